// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only stand-in for the R-Car VIN's capture hardware, so the real
 * rcar-vin driver completes real buffers in an emulator without a VIN.
 *
 * In emulation each VIN's register window ("reg") is a reserved-memory
 * no-map window of guest RAM: what the driver writes there stays there, and
 * nothing happens by itself. This module plays the hardware's part: every
 * frame period it reads the registers rcar-dma.c programs and, while capture
 * is on (VNMC.ME set and VNFC continuous or single frame), it stamps the
 * frame into the buffer the current slot's VNMBm points at, reports the
 * slot and "capture active" in VNMS, sets the frame-end bit in VNINTS and
 * makes the VIN's interrupt pending at the GIC, so rvin_irq() runs as it
 * would on hardware. When capture is off it clears VNMS.CA, which
 * rvin_stop_streaming() waits for.
 *
 * It is matched from a DT node "v4l2-unplug,vin-hw" whose
 * "v4l2-unplug,vins" property lists the VIN nodes it drives.
 */

#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/mod_devicetable.h>
#include <linux/of.h>
#include <linux/of_address.h>
#include <linux/of_irq.h>
#include <linux/platform_device.h>
#include <linux/workqueue.h>

#include "unplug-compat.h"

/* Register offsets and bits, from rcar-dma.c. */
#define VNMC_REG	0x00
#define VNMS_REG	0x04
#define VNFC_REG	0x08
#define VNMB_REG(m)	(0x30 + ((m) << 2))
#define VNIE_REG	0x40
#define VNINTS_REG	0x44

#define VNMC_ME		BIT(0)
#define VNMS_FBS_SHIFT	3
#define VNMS_AV		BIT(1)
#define VNMS_CA		BIT(0)
#define VNFC_C_FRAME	BIT(1)
#define VNFC_S_FRAME	BIT(0)
#define VNIE_FIE	BIT(4)
#define VNIE_EFE	BIT(1)
#define VNINTS_FIS	BIT(4)

#define HW_BUFFER_NUM	3	/* slots, as rcar-vin.h */
#define STAMP_BYTES	64

static unsigned int fps = 30;
module_param(fps, uint, 0444);
MODULE_PARM_DESC(fps, "frames per second each VIN produces while capturing");

struct unplug_vin {
	void __iomem *base;
	int irq;
	unsigned int slot;
	u32 sequence;
	bool capturing;
};

struct unplug_vin_hw {
	struct device *dev;
	struct delayed_work work;
	unsigned long period;
	unsigned int num_vins;
	struct unplug_vin vins[];
};

/* What a frame's DMA would leave: a recognisable header and a counter. */
static void unplug_stamp(struct unplug_vin_hw *hw, struct unplug_vin *vin)
{
	phys_addr_t addr = readl(vin->base + VNMB_REG(vin->slot));
	u32 *mem;

	if (!addr)
		return;
	mem = memremap(addr, STAMP_BYTES, MEMREMAP_WB);
	if (!mem)
		return;
	mem[0] = 0x554e504c;	/* "UNPL" */
	mem[1] = vin->sequence;
	memunmap(mem);
}

static void unplug_vin_tick(struct unplug_vin_hw *hw, struct unplug_vin *vin)
{
	u32 vnmc = readl(vin->base + VNMC_REG);
	u32 vnfc = readl(vin->base + VNFC_REG);
	u32 vnie;

	if (!(vnmc & VNMC_ME) || !(vnfc & (VNFC_C_FRAME | VNFC_S_FRAME))) {
		if (vin->capturing)
			dev_dbg(hw->dev, "capture off after %u frames\n",
				vin->sequence);
		vin->capturing = false;
		vin->slot = 0;
		vin->sequence = 0;
		writel(0, vin->base + VNMS_REG);
		return;
	}

	vin->capturing = true;
	unplug_stamp(hw, vin);
	writel(VNMS_CA | VNMS_AV | (vin->slot << VNMS_FBS_SHIFT),
	       vin->base + VNMS_REG);
	vin->slot = (vin->slot + 1) % HW_BUFFER_NUM;
	vin->sequence++;

	/* A single frame capture ends by itself. */
	if (vnfc & VNFC_S_FRAME && !(vnfc & VNFC_C_FRAME))
		writel(vnfc & ~VNFC_S_FRAME, vin->base + VNFC_REG);

	vnie = readl(vin->base + VNIE_REG);
	if (!(vnie & (VNIE_FIE | VNIE_EFE)))
		return;
	writel(readl(vin->base + VNINTS_REG) | VNINTS_FIS,
	       vin->base + VNINTS_REG);
	/* The driver may have gone (unbound): a pending, unrequested SPI is harmless. */
	irq_set_irqchip_state(vin->irq, IRQCHIP_STATE_PENDING, true);
}

static void unplug_vin_hw_work(struct work_struct *work)
{
	struct unplug_vin_hw *hw = container_of(to_delayed_work(work),
						struct unplug_vin_hw, work);
	unsigned int i;

	for (i = 0; i < hw->num_vins; i++)
		unplug_vin_tick(hw, &hw->vins[i]);
	schedule_delayed_work(&hw->work, hw->period);
}

static int unplug_vin_hw_probe(struct platform_device *pdev)
{
	struct device *dev = &pdev->dev;
	struct unplug_vin_hw *hw;
	struct resource res;
	int count, i, ret;

	count = of_count_phandle_with_args(dev->of_node, "v4l2-unplug,vins",
					   NULL);
	if (count <= 0)
		return dev_err_probe(dev, -EINVAL, "no v4l2-unplug,vins\n");

	hw = devm_kzalloc(dev, struct_size(hw, vins, count), GFP_KERNEL);
	if (!hw)
		return -ENOMEM;
	hw->dev = dev;
	hw->num_vins = count;
	hw->period = max(1UL, (unsigned long)HZ / max(1U, fps));

	for (i = 0; i < count; i++) {
		struct device_node *np;
		struct unplug_vin *vin = &hw->vins[i];

		np = of_parse_phandle(dev->of_node, "v4l2-unplug,vins", i);
		if (!np)
			return -EINVAL;
		ret = of_address_to_resource(np, 0, &res);
		/*
		 * Same physical window as the driver's, mapped without
		 * claiming it: the driver requested the region.
		 */
		if (!ret) {
			vin->base = devm_ioremap(dev, res.start,
						 resource_size(&res));
			if (!vin->base)
				ret = -ENOMEM;
		}
		if (!ret) {
			vin->irq = of_irq_get(np, 0);
			if (vin->irq <= 0)
				ret = vin->irq ? vin->irq : -ENXIO;
		}
		of_node_put(np);
		if (ret)
			return dev_err_probe(dev, ret, "VIN %d\n", i);
	}

	INIT_DELAYED_WORK(&hw->work, unplug_vin_hw_work);
	platform_set_drvdata(pdev, hw);
	schedule_delayed_work(&hw->work, hw->period);
	dev_info(dev, "driving %u VINs at %u fps\n", count, fps);
	return 0;
}

static void unplug_vin_hw_teardown(struct platform_device *pdev)
{
	struct unplug_vin_hw *hw = platform_get_drvdata(pdev);

	cancel_delayed_work_sync(&hw->work);
}
UNPLUG_PLATFORM_REMOVE(unplug_vin_hw_remove, unplug_vin_hw_teardown)

static const struct of_device_id unplug_vin_hw_of_match[] = {
	{ .compatible = "v4l2-unplug,vin-hw" },
	{ /* sentinel */ }
};
MODULE_DEVICE_TABLE(of, unplug_vin_hw_of_match);

static struct platform_driver unplug_vin_hw_driver = {
	.driver = {
		.name = "unplug-vin-hw",
		.of_match_table = unplug_vin_hw_of_match,
	},
	.probe = unplug_vin_hw_probe,
	.remove = unplug_vin_hw_remove,
};
module_platform_driver(unplug_vin_hw_driver);

MODULE_DESCRIPTION("v4l2-unplug test stand-in for the R-Car VIN capture hardware");
MODULE_LICENSE("GPL");
