/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel interfaces the test-only rcar modules use changed between the
 * releases the harness boots (6.1, 6.12, 7.x). Each difference is bridged
 * here once, by the release that made it, so the modules read as if
 * written for one kernel.
 */
#ifndef UNPLUG_COMPAT_H
#define UNPLUG_COMPAT_H

#include <linux/version.h>

/*
 * 6.8 moved a subdev's TRY-state setup from the init_cfg pad op to
 * internal_ops.init_state, and replaced v4l2_subdev_get_try_format() with
 * v4l2_subdev_state_get_format().
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
#define UNPLUG_HAS_INIT_STATE 1
#define unplug_state_format(sd, state, pad) v4l2_subdev_state_get_format(state, pad)
#else
#define UNPLUG_HAS_INIT_STATE 0
#define unplug_state_format(sd, state, pad) v4l2_subdev_get_try_format(sd, state, pad)
#endif

/*
 * 6.11 made platform_driver.remove return void. The modules write a void
 * teardown; this declares the remove callback each release expects.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
#define UNPLUG_PLATFORM_REMOVE(name, teardown)				\
	static void name(struct platform_device *pdev) { teardown(pdev); }
#else
#define UNPLUG_PLATFORM_REMOVE(name, teardown)				\
	static int name(struct platform_device *pdev) { teardown(pdev); return 0; }
#endif

#endif /* UNPLUG_COMPAT_H */
