// SPDX-License-Identifier: GPL-2.0
/*
 * A test-only V4L2 subdev that stands in for the hardware around an R-Car
 * VIN in emulation: a parallel sensor (one source pad) or a CSI-2 receiver
 * (sink pad 0, source pads 1-4, like rcar-csi2), chosen by the DT property
 * "v4l2-unplug,csi2-receiver". It is matched from the device tree and
 * registered as an async subdev, so rcar-vin finds it through its fwnode
 * endpoints, and it can be unbound and bound again through sysfs.
 */

#include <linux/module.h>
#include <linux/mod_devicetable.h>
#include <linux/of.h>
#include <linux/platform_device.h>
#include <media/v4l2-async.h>
#include <media/v4l2-subdev.h>

#include "unplug-compat.h"

#define UNPLUG_MAX_PADS 5

struct unplug_subdev {
	struct v4l2_subdev sd;
	struct media_pad pads[UNPLUG_MAX_PADS];
	struct v4l2_mbus_framefmt fmt[UNPLUG_MAX_PADS];
	/* Serialises fmt[] and streaming against concurrent pad ops. */
	struct mutex lock;
	unsigned int num_pads;
	int streaming;
};

/* Codes rcar-vin accepts from its source (rcar-v4l2.c, rvin_mc_validate_format). */
static const u32 unplug_codes[] = {
	MEDIA_BUS_FMT_UYVY8_1X16,
	MEDIA_BUS_FMT_YUYV8_1X16,
	MEDIA_BUS_FMT_RGB888_1X24,
};

static struct unplug_subdev *to_unplug(struct v4l2_subdev *sd)
{
	return container_of(sd, struct unplug_subdev, sd);
}

static bool unplug_code_ok(u32 code)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(unplug_codes); i++)
		if (unplug_codes[i] == code)
			return true;
	return false;
}

static void unplug_default_fmt(struct v4l2_mbus_framefmt *fmt)
{
	*fmt = (struct v4l2_mbus_framefmt) {
		.width = 640,
		.height = 480,
		.code = MEDIA_BUS_FMT_UYVY8_1X16,
		.field = V4L2_FIELD_NONE,
		.colorspace = V4L2_COLORSPACE_SRGB,
	};
}

static int unplug_init_cfg(struct v4l2_subdev *sd,
			   struct v4l2_subdev_state *state)
{
	struct unplug_subdev *priv = to_unplug(sd);
	unsigned int pad;

	for (pad = 0; pad < priv->num_pads; pad++)
		unplug_default_fmt(unplug_state_format(sd, state, pad));
	return 0;
}

static int unplug_enum_mbus_code(struct v4l2_subdev *sd,
				 struct v4l2_subdev_state *state,
				 struct v4l2_subdev_mbus_code_enum *code)
{
	if (code->index >= ARRAY_SIZE(unplug_codes))
		return -EINVAL;
	code->code = unplug_codes[code->index];
	return 0;
}

static struct v4l2_mbus_framefmt *
unplug_fmt(struct unplug_subdev *priv, struct v4l2_subdev_state *state,
	   unsigned int pad, u32 which)
{
	if (which == V4L2_SUBDEV_FORMAT_TRY)
		return unplug_state_format(&priv->sd, state, pad);
	return &priv->fmt[pad];
}

static int unplug_get_fmt(struct v4l2_subdev *sd,
			  struct v4l2_subdev_state *state,
			  struct v4l2_subdev_format *format)
{
	struct unplug_subdev *priv = to_unplug(sd);

	if (format->pad >= priv->num_pads)
		return -EINVAL;
	mutex_lock(&priv->lock);
	format->format = *unplug_fmt(priv, state, format->pad, format->which);
	mutex_unlock(&priv->lock);
	return 0;
}

static int unplug_set_fmt(struct v4l2_subdev *sd,
			  struct v4l2_subdev_state *state,
			  struct v4l2_subdev_format *format)
{
	struct unplug_subdev *priv = to_unplug(sd);
	struct v4l2_mbus_framefmt *mf = &format->format;

	if (format->pad >= priv->num_pads)
		return -EINVAL;
	if (!unplug_code_ok(mf->code))
		mf->code = MEDIA_BUS_FMT_UYVY8_1X16;
	mf->width = clamp_t(u32, mf->width, 16, 4096) & ~1;
	mf->height = clamp_t(u32, mf->height, 16, 4096) & ~1;
	mf->field = V4L2_FIELD_NONE;
	mf->colorspace = V4L2_COLORSPACE_SRGB;

	mutex_lock(&priv->lock);
	if (format->which == V4L2_SUBDEV_FORMAT_ACTIVE && priv->streaming) {
		mutex_unlock(&priv->lock);
		return -EBUSY;
	}
	*unplug_fmt(priv, state, format->pad, format->which) = *mf;
	mutex_unlock(&priv->lock);
	return 0;
}

static int unplug_s_stream(struct v4l2_subdev *sd, int enable)
{
	struct unplug_subdev *priv = to_unplug(sd);

	mutex_lock(&priv->lock);
	priv->streaming = enable;
	mutex_unlock(&priv->lock);
	dev_dbg(sd->dev, "stream %s\n", enable ? "on" : "off");
	return 0;
}

static const struct v4l2_subdev_video_ops unplug_video_ops = {
	.s_stream = unplug_s_stream,
};

static const struct v4l2_subdev_pad_ops unplug_pad_ops = {
#if !UNPLUG_HAS_INIT_STATE
	.init_cfg = unplug_init_cfg,
#endif
	.enum_mbus_code = unplug_enum_mbus_code,
	.get_fmt = unplug_get_fmt,
	.set_fmt = unplug_set_fmt,
};

static const struct v4l2_subdev_ops unplug_ops = {
	.video = &unplug_video_ops,
	.pad = &unplug_pad_ops,
};

#if UNPLUG_HAS_INIT_STATE
static const struct v4l2_subdev_internal_ops unplug_internal_ops = {
	.init_state = unplug_init_cfg,
};
#endif

static int unplug_probe(struct platform_device *pdev)
{
	struct device *dev = &pdev->dev;
	struct unplug_subdev *priv;
	unsigned int pad;
	int ret;

	priv = devm_kzalloc(dev, sizeof(*priv), GFP_KERNEL);
	if (!priv)
		return -ENOMEM;
	mutex_init(&priv->lock);

	v4l2_subdev_init(&priv->sd, &unplug_ops);
#if UNPLUG_HAS_INIT_STATE
	priv->sd.internal_ops = &unplug_internal_ops;
#endif
	priv->sd.owner = THIS_MODULE;
	priv->sd.dev = dev;
	priv->sd.fwnode = dev_fwnode(dev);
	priv->sd.flags |= V4L2_SUBDEV_FL_HAS_DEVNODE;
	snprintf(priv->sd.name, sizeof(priv->sd.name), "unplug %s",
		 dev_name(dev));
	v4l2_set_subdevdata(&priv->sd, priv);

	if (of_property_read_bool(dev->of_node, "v4l2-unplug,csi2-receiver")) {
		/* rcar-vin links its VINs to source pads 1-4 of a CSI-2 receiver. */
		priv->num_pads = UNPLUG_MAX_PADS;
		priv->sd.entity.function = MEDIA_ENT_F_VID_IF_BRIDGE;
		priv->pads[0].flags = MEDIA_PAD_FL_SINK;
		for (pad = 1; pad < priv->num_pads; pad++)
			priv->pads[pad].flags = MEDIA_PAD_FL_SOURCE;
	} else {
		priv->num_pads = 1;
		priv->sd.entity.function = MEDIA_ENT_F_CAM_SENSOR;
		priv->pads[0].flags = MEDIA_PAD_FL_SOURCE;
	}
	for (pad = 0; pad < priv->num_pads; pad++)
		unplug_default_fmt(&priv->fmt[pad]);

	ret = media_entity_pads_init(&priv->sd.entity, priv->num_pads,
				     priv->pads);
	if (ret)
		return ret;

	platform_set_drvdata(pdev, priv);

	ret = v4l2_async_register_subdev(&priv->sd);
	if (ret) {
		media_entity_cleanup(&priv->sd.entity);
		return ret;
	}
	dev_info(dev, "registered with %u pads\n", priv->num_pads);
	return 0;
}

static void unplug_teardown(struct platform_device *pdev)
{
	struct unplug_subdev *priv = platform_get_drvdata(pdev);

	v4l2_async_unregister_subdev(&priv->sd);
	media_entity_cleanup(&priv->sd.entity);
	mutex_destroy(&priv->lock);
}
UNPLUG_PLATFORM_REMOVE(unplug_remove, unplug_teardown)

static const struct of_device_id unplug_of_match[] = {
	{ .compatible = "v4l2-unplug,test-subdev" },
	{ /* sentinel */ }
};
MODULE_DEVICE_TABLE(of, unplug_of_match);

static struct platform_driver unplug_driver = {
	.driver = {
		.name = "unplug-test-subdev",
		.of_match_table = unplug_of_match,
	},
	.probe = unplug_probe,
	.remove = unplug_remove,
};
module_platform_driver(unplug_driver);

MODULE_DESCRIPTION("v4l2-unplug test subdev: sensor or CSI-2 receiver stand-in");
MODULE_LICENSE("GPL");
