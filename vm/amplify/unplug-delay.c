// SPDX-License-Identifier: GPL-2.0
/*
 * unplug-delay: a test-only module that widens race windows. It puts a
 * kprobe on each named kernel function and, on a seeded fraction of the
 * calls, busy-waits a bounded, seeded time before the function runs.
 *
 *   modprobe unplug-delay symbols=media_device_get_info,subdev_open \
 *            delay_min_us=500 delay_max_us=5000 permille=500 seed=2
 *   cat /sys/kernel/debug/unplug-delay/stats
 *        (symbol+offset, calls, delays, microseconds delayed, calls let by busy)
 *
 * Why the entry of a function: the bugs this is for are a check made by the
 * caller (__media_ioctl()'s media_devnode_is_registered(), v4l2_open()'s
 * video_is_registered()) and a use a few instructions into the callee
 * (dev->dev->driver->name, mdev->dev->driver->owner) of what an unbind
 * clears in between. The entry lies inside that window on every build of
 * every kernel version; an offset into the function would need the
 * disassembly of each build, and a kretprobe would wait after the use. A
 * symbol may still name an offset (symbol+0x1c) for a window inside one
 * function.
 *
 * A kprobe handler runs with preemption (and, for a probe taken through
 * int3, interrupts) off, so the delay is a busy-wait that holds its CPU. One
 * CPU waits at a time: a call that comes while another is being delayed
 * runs on undelayed (counted as "busy"), so the unbind on the other side of
 * the race always has a CPU to run on, which is the point. Delays are
 * bounded by delay_max_us, at most DELAY_LIMIT_US.
 *
 * Every CPU draws from its own generator, seeded from (seed, cpu), so a
 * seed replays the same sequence of choices per CPU; which call meets which
 * choice is the race's part, as with the harness's own seeded workers.
 */

#define pr_fmt(fmt) "unplug-delay: " fmt

#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/kernel.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/prandom.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string.h>

#define MAX_SYMBOLS 8
/* 50 ms: far below the soft-lockup and RCU-stall thresholds. */
#define DELAY_LIMIT_US 50000

static char *symbols[MAX_SYMBOLS];
static int nr_symbols;
module_param_array(symbols, charp, &nr_symbols, 0444);
MODULE_PARM_DESC(symbols, "functions to delay: name or name+offset, comma-separated");

static uint delay_min_us = 100;
module_param(delay_min_us, uint, 0444);
MODULE_PARM_DESC(delay_min_us, "shortest delay in microseconds");

static uint delay_max_us = 2000;
module_param(delay_max_us, uint, 0444);
MODULE_PARM_DESC(delay_max_us, "longest delay in microseconds (at most 50000)");

static uint permille = 500;
module_param(permille, uint, 0444);
MODULE_PARM_DESC(permille, "calls delayed, per thousand");

static ulong seed = 1;
module_param(seed, ulong, 0444);
MODULE_PARM_DESC(seed, "seed of every choice");

struct delay_point {
	struct kprobe kp;
	char name[KSYM_NAME_LEN];
	atomic64_t calls;
	atomic64_t delays;
	atomic64_t delayed_us;
	atomic64_t busy;
};

static struct delay_point *points;
static int nr_points;
static DEFINE_PER_CPU(struct rnd_state, delay_rnd);
static struct dentry *debug_dir;
static atomic_t waiting = ATOMIC_INIT(0);

static int delay_pre(struct kprobe *kp, struct pt_regs *regs)
{
	struct delay_point *p = container_of(kp, struct delay_point, kp);
	struct rnd_state *rnd = this_cpu_ptr(&delay_rnd);
	u32 us;

	atomic64_inc(&p->calls);
	if (prandom_u32_state(rnd) % 1000 >= permille)
		return 0;
	us = delay_min_us + prandom_u32_state(rnd) % (delay_max_us - delay_min_us + 1);
	if (atomic_cmpxchg(&waiting, 0, 1) != 0) {
		atomic64_inc(&p->busy);
		return 0;
	}
	atomic64_inc(&p->delays);
	atomic64_add(us, &p->delayed_us);
	/* udelay() is only good for short waits; whole milliseconds first. */
	mdelay(us / 1000);
	udelay(us % 1000);
	atomic_set(&waiting, 0);
	return 0;
}
NOKPROBE_SYMBOL(delay_pre);

/* "name" or "name+offset" (offset in C notation: 0x1c or 28). */
static int parse_point(struct delay_point *p, const char *spec)
{
	const char *plus = strchr(spec, '+');
	unsigned int offset = 0;
	size_t len = plus ? plus - spec : strlen(spec);

	if (!len || len >= sizeof(p->name))
		return -EINVAL;
	if (plus && kstrtouint(plus + 1, 0, &offset))
		return -EINVAL;
	memcpy(p->name, spec, len);
	p->name[len] = '\0';
	p->kp.symbol_name = p->name;
	p->kp.offset = offset;
	p->kp.pre_handler = delay_pre;
	return 0;
}

static int stats_show(struct seq_file *m, void *v)
{
	int i;

	for (i = 0; i < nr_points; i++)
		seq_printf(m, "%s+%u %lld %lld %lld %lld\n", points[i].name,
			   points[i].kp.offset,
			   (long long)atomic64_read(&points[i].calls),
			   (long long)atomic64_read(&points[i].delays),
			   (long long)atomic64_read(&points[i].delayed_us),
			   (long long)atomic64_read(&points[i].busy));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(stats);

static void unregister_points(int count)
{
	while (count--)
		unregister_kprobe(&points[count].kp);
}

static int __init delay_init(void)
{
	int cpu, i, ret;

	if (!nr_symbols) {
		pr_err("no symbols= given: nothing to delay\n");
		return -EINVAL;
	}
	if (delay_max_us > DELAY_LIMIT_US || delay_min_us > delay_max_us ||
	    permille > 1000) {
		pr_err("delay_min_us <= delay_max_us <= %d and permille <= 1000, please\n",
		       DELAY_LIMIT_US);
		return -EINVAL;
	}
	for_each_possible_cpu(cpu)
		prandom_seed_state(per_cpu_ptr(&delay_rnd, cpu),
				   ((u64)seed << 16) ^ cpu);

	points = kcalloc(nr_symbols, sizeof(*points), GFP_KERNEL);
	if (!points)
		return -ENOMEM;
	for (i = 0; i < nr_symbols; i++) {
		ret = parse_point(&points[i], symbols[i]);
		if (ret) {
			pr_err("cannot read symbol %s: name or name+offset\n", symbols[i]);
			goto err;
		}
		ret = register_kprobe(&points[i].kp);
		if (ret) {
			pr_err("cannot probe %s: %d\n", symbols[i], ret);
			goto err;
		}
		nr_points++;
		pr_info("delaying %s+%u: %u-%u us, %u/1000 of calls, seed %lu\n",
			points[i].name, points[i].kp.offset, delay_min_us,
			delay_max_us, permille, seed);
	}
	debug_dir = debugfs_create_dir("unplug-delay", NULL);
	debugfs_create_file("stats", 0444, debug_dir, NULL, &stats_fops);
	return 0;

err:
	unregister_points(nr_points);
	kfree(points);
	return ret;
}

static void __exit delay_exit(void)
{
	debugfs_remove_recursive(debug_dir);
	unregister_points(nr_points);
	kfree(points);
}

module_init(delay_init);
module_exit(delay_exit);
MODULE_DESCRIPTION("Seeded delays at kernel functions, to widen race windows (test only)");
MODULE_LICENSE("GPL");
