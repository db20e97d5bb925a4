// SPDX-License-Identifier: GPL-2.0
/*
 * unplug-provoke: a test-only module that makes the debug kernel print one
 * report of a chosen class, so that the kernel-log parser (harness/pure/kmsg) is
 * checked against real console output for classes LKDTM in Linux 6.1 has no
 * trigger for: lockdep's deadlock, held-lock-freed, suspicious-RCU,
 * bad-unlock, inconsistent-lock-state and non-static-key reports,
 * debugobjects, KASAN bug types beyond LKDTM's, UBSAN's shift check, and
 * SLUB's own debug checks (slub_debug=FZPU).
 *
 * It exists only for tests/data/kmsg/lkdtm/ (vm/capture-lkdtm-corpus); every
 * trigger breaks the kernel on purpose. Never load it anywhere else.
 *
 *   echo LOCKDEP_CIRCULAR > /sys/kernel/debug/unplug-provoke/DIRECT
 *   cat /sys/kernel/debug/unplug-provoke/DIRECT     (the trigger names)
 *
 * Like LKDTM, a trigger announces itself first with
 * "unplug-provoke: Performing direct entry NAME", where the capture script
 * cuts the console. lockdep and KASAN report only their first bug per boot,
 * so each trigger wants a boot of its own.
 */

#define pr_fmt(fmt) "unplug-provoke: " fmt

#include <linux/completion.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/jiffies.h>
#include <linux/kasan.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/timer.h>
#include <linux/uaccess.h>

/* --- lockdep ------------------------------------------------------------ */

static DEFINE_MUTEX(provoke_mutex_a);
static DEFINE_MUTEX(provoke_mutex_b);

/*
 * A then B, later B then A, in one task and one after the other: nothing
 * can deadlock here, but lockdep records the A -> B dependency and reports
 * the cycle the moment B -> A is attempted.
 */
static int provoke_lockdep_circular(void)
{
	mutex_lock(&provoke_mutex_a);
	mutex_lock(&provoke_mutex_b);
	mutex_unlock(&provoke_mutex_b);
	mutex_unlock(&provoke_mutex_a);

	mutex_lock(&provoke_mutex_b);
	mutex_lock(&provoke_mutex_a);
	mutex_unlock(&provoke_mutex_a);
	mutex_unlock(&provoke_mutex_b);
	return 0;
}

struct provoke_pair_obj {
	struct mutex lock;
};

static struct provoke_pair_obj provoke_pair[2];

/* One mutex_init() call site: one lock class for both mutexes. */
static void provoke_pair_init(struct provoke_pair_obj *obj)
{
	mutex_init(&obj->lock);
}

/*
 * Two locks of one class, the second taken while holding the first, with no
 * mutex_lock_nested() to tell lockdep the order is fixed. They are two
 * mutexes, so nothing deadlocks; lockdep cannot tell them apart and reports
 * what would be the same lock taken twice.
 */
static int provoke_lockdep_recursive(void)
{
	provoke_pair_init(&provoke_pair[0]);
	provoke_pair_init(&provoke_pair[1]);
	mutex_lock(&provoke_pair[0].lock);
	mutex_lock(&provoke_pair[1].lock);
	mutex_unlock(&provoke_pair[1].lock);
	mutex_unlock(&provoke_pair[0].lock);
	return 0;
}

struct provoke_locked {
	struct mutex lock;
	int value;
};

/*
 * kfree() checks that no lock the task holds lies in the freed memory. The
 * mutex is never unlocked: that would touch freed memory, and lockdep is off
 * after its report anyway.
 */
static int provoke_lockdep_held_lock_freed(void)
{
	struct provoke_locked *obj = kzalloc(sizeof(*obj), GFP_KERNEL);

	if (!obj)
		return -ENOMEM;
	mutex_init(&obj->lock);
	mutex_lock(&obj->lock);
	kfree(obj);
	return 0;
}

struct provoke_rcu_obj {
	int value;
};

static struct provoke_rcu_obj __rcu *provoke_rcu_ptr;

/* rcu_dereference() outside rcu_read_lock(): PROVE_RCU's check fires. */
static int provoke_lockdep_suspicious_rcu(void)
{
	struct provoke_rcu_obj *obj = rcu_dereference(provoke_rcu_ptr);

	pr_info("read %px without rcu_read_lock()\n", obj);
	return 0;
}

static DEFINE_MUTEX(provoke_mutex_unbalanced);

/*
 * The second unlock releases a lock the task no longer holds. lockdep
 * reports it first; the mutex itself just stays unlocked.
 */
static int provoke_lockdep_bad_unlock(void)
{
	mutex_lock(&provoke_mutex_unbalanced);
	mutex_unlock(&provoke_mutex_unbalanced);
	mutex_unlock(&provoke_mutex_unbalanced);
	return 0;
}

struct provoke_uninit_obj {
	spinlock_t lock;
	int value;
};

/*
 * A spinlock in zeroed memory that spin_lock_init() never saw: lockdep finds
 * no class key and says so. A zeroed spinlock is an unlocked one, so the
 * lock and unlock themselves are harmless (DEBUG_SPINLOCK's "bad magic"
 * stays quiet, as lockdep has just turned lock debugging off).
 */
static int provoke_lockdep_non_static_key(void)
{
	struct provoke_uninit_obj *obj = kzalloc(sizeof(*obj), GFP_KERNEL);

	if (!obj)
		return -ENOMEM;
	spin_lock(&obj->lock);
	obj->value++;
	spin_unlock(&obj->lock);
	kfree(obj);
	return 0;
}

static DEFINE_SPINLOCK(provoke_softirq_lock);
static struct timer_list provoke_softirq_timer;
static DECLARE_COMPLETION(provoke_softirq_done);

static void provoke_softirq_timer_fn(struct timer_list *timer)
{
	/* Taken in softirq context: {IN-SOFTIRQ-W} */
	spin_lock(&provoke_softirq_lock);
	spin_unlock(&provoke_softirq_lock);
	complete(&provoke_softirq_done);
}

/*
 * The lock is taken with softirqs enabled in process context ({SOFTIRQ-ON-W}),
 * then from a timer callback: a softirq arriving while the process holds it
 * would spin forever on its own CPU. No such interrupt comes here (the two
 * uses never overlap), but lockdep reports the inconsistency at the second.
 */
static int provoke_lockdep_inconsistent(void)
{
	spin_lock(&provoke_softirq_lock);
	spin_unlock(&provoke_softirq_lock);

	reinit_completion(&provoke_softirq_done);
	timer_setup(&provoke_softirq_timer, provoke_softirq_timer_fn, 0);
	mod_timer(&provoke_softirq_timer, jiffies + 1);
	if (!wait_for_completion_timeout(&provoke_softirq_done, 5 * HZ))
		pr_err("the timer did not run within 5 s\n");
	del_timer_sync(&provoke_softirq_timer);
	return 0;
}

/* --- debugobjects ------------------------------------------------------- */

struct provoke_timer_obj {
	struct timer_list timer;
	int value;
};

static void provoke_odebug_timer_fn(struct timer_list *timer)
{
	pr_err("the freed timer ran\n");
}

/*
 * Freeing memory with an armed timer in it. debugobjects reports it and
 * deactivates the timer (its fixup), so the callback never runs on freed
 * memory.
 */
static int provoke_odebug_free_active(void)
{
	struct provoke_timer_obj *obj = kzalloc(sizeof(*obj), GFP_KERNEL);

	if (!obj)
		return -ENOMEM;
	timer_setup(&obj->timer, provoke_odebug_timer_fn, 0);
	mod_timer(&obj->timer, jiffies + 60 * HZ);
	kfree(obj);
	return 0;
}

/* --- KASAN -------------------------------------------------------------- */

static char provoke_global[10] = "unplug";

/*
 * A read three bytes past a global array, through a pointer rather than the
 * array (UBSAN's bounds check would report an array index first) and with a
 * volatile index the compiler cannot check or fold.
 */
static int provoke_kasan_global_oob(void)
{
	volatile size_t index = ARRAY_SIZE(provoke_global) + 3;
	char *p = provoke_global;

	pr_info("read %d past provoke_global\n", p[index]);
	return 0;
}

/* kfree() of a pointer into the middle of a kmalloc object. */
static int provoke_kasan_invalid_free(void)
{
	volatile size_t offset = 1;
	char *obj = kmalloc(64, GFP_KERNEL);

	if (!obj)
		return -ENOMEM;
	kfree(obj + offset);
	return 0;
}

/* --- UBSAN ------------------------------------------------------------- */

/* A 32-bit int shifted by 40: CONFIG_UBSAN_SHIFT. */
static int provoke_ubsan_shift(void)
{
	volatile int shift = 40;
	int one = 1;

	pr_info("1 << 40 is %d\n", one << shift);
	return 0;
}

/* --- SLUB debug (boot with slub_debug=FZPU) ----------------------------- */

/*
 * KASAN reports every one of these bugs before SLUB's checks could, so the
 * stray writes are made with KASAN's reports suppressed for this task
 * (kasan_disable_current()), the way SLUB itself touches its metadata. What
 * SLUB then finds is what a kernel without KASAN (e.g. debian-arm64 with
 * slub_debug) prints. A cache of our own keeps the corrupted slab away from
 * the rest of the kernel.
 *
 * SLAB_TYPESAFE_BY_RCU: KASAN neither quarantines nor checks the objects of
 * such a cache on free, so a kmem_cache_free() reaches SLUB at once.
 */
#define PROVOKE_OBJECT_SIZE 100
/*
 * Where SLUB keeps a free object's free pointer in an RCU cache with red
 * zones: right after the object padded to a word (mm/slub.c,
 * calculate_sizes() in 6.1). struct kmem_cache's own `offset` is not
 * visible to modules.
 */
#define PROVOKE_FREEPOINTER_OFFSET ALIGN(PROVOKE_OBJECT_SIZE, sizeof(void *))

static struct kmem_cache *provoke_cache_rcu;
static struct kmem_cache *provoke_cache;
static DEFINE_MUTEX(provoke_cache_mutex);

/*
 * The caches get their debug flags from slub_debug=FZPU on the command line,
 * like every other cache; without it the SLUB triggers corrupt nothing that
 * is checked, and print nothing.
 */
static struct kmem_cache *provoke_slub_cache(bool rcu)
{
	struct kmem_cache **cache = rcu ? &provoke_cache_rcu : &provoke_cache;

	mutex_lock(&provoke_cache_mutex);
	if (!*cache)
		*cache = kmem_cache_create(rcu ? "unplug_provoke_rcu" : "unplug_provoke",
					   PROVOKE_OBJECT_SIZE, 0,
					   rcu ? SLAB_TYPESAFE_BY_RCU : 0, NULL);
	mutex_unlock(&provoke_cache_mutex);
	return *cache;
}

static void provoke_write_unchecked(void *at, u8 value)
{
	kasan_disable_current();
	*(volatile u8 *)at = value;
	kasan_enable_current();
}

/* One byte past the object, into SLUB's right red zone; found on free. */
static int provoke_slub_redzone(void)
{
	struct kmem_cache *cache = provoke_slub_cache(true);
	u8 *obj;

	if (!cache)
		return -ENOMEM;
	obj = kmem_cache_alloc(cache, GFP_KERNEL);
	if (!obj)
		return -ENOMEM;
	provoke_write_unchecked(obj + PROVOKE_OBJECT_SIZE, 0x42);
	kmem_cache_free(cache, obj);
	return 0;
}

/*
 * The same object freed twice. `keep` holds the slab: were it empty after
 * the first free, SLUB could give the page back before the second.
 */
static int provoke_slub_double_free(void)
{
	struct kmem_cache *cache = provoke_slub_cache(true);
	void *keep, *obj;

	if (!cache)
		return -ENOMEM;
	keep = kmem_cache_alloc(cache, GFP_KERNEL);
	obj = kmem_cache_alloc(cache, GFP_KERNEL);
	if (!keep || !obj)
		return -ENOMEM;
	kmem_cache_free(cache, obj);
	kmem_cache_free(cache, obj);
	return 0;
}

/*
 * A write into a free object, found when SLUB hands it out again and its
 * poison (0x6b) is not intact. KASAN holds freed objects back in its
 * quarantine; kmem_cache_shrink() empties the cache's share of it, so the
 * object is really free (and poisoned) before the write.
 */
static int provoke_slub_poison(void)
{
	struct kmem_cache *cache = provoke_slub_cache(false);
	u8 *keep, *obj, *again;

	if (!cache)
		return -ENOMEM;
	keep = kmem_cache_alloc(cache, GFP_KERNEL);
	obj = kmem_cache_alloc(cache, GFP_KERNEL);
	if (!keep || !obj)
		return -ENOMEM;
	kmem_cache_free(cache, obj);
	kmem_cache_shrink(cache);
	provoke_write_unchecked(obj + 8, 0x42);
	again = kmem_cache_alloc(cache, GFP_KERNEL);
	pr_info("allocated %px after the write to %px\n", again, obj);
	return 0;
}

/*
 * A free object's free pointer (outside the object in an RCU cache)
 * overwritten with an address outside the slab; found when the object is
 * allocated again. SLUB then gives up the slab's free list, so nothing
 * follows the bad pointer.
 */
static int provoke_slub_freepointer(void)
{
	struct kmem_cache *cache = provoke_slub_cache(true);
	u8 *keep, *obj, *again;
	int i;

	if (!cache)
		return -ENOMEM;
	keep = kmem_cache_alloc(cache, GFP_KERNEL);
	obj = kmem_cache_alloc(cache, GFP_KERNEL);
	if (!keep || !obj)
		return -ENOMEM;
	kmem_cache_free(cache, obj);
	for (i = 0; i < sizeof(void *); i++)
		provoke_write_unchecked(obj + PROVOKE_FREEPOINTER_OFFSET + i, 0x41);
	again = kmem_cache_alloc(cache, GFP_KERNEL);
	pr_info("allocated %px after the write to %px\n", again, obj);
	return 0;
}

/* --- the debugfs file --------------------------------------------------- */

struct provoke_trigger {
	const char *name;
	int (*func)(void);
};

static const struct provoke_trigger provoke_triggers[] = {
	{ "LOCKDEP_CIRCULAR", provoke_lockdep_circular },
	{ "LOCKDEP_RECURSIVE", provoke_lockdep_recursive },
	{ "LOCKDEP_HELD_LOCK_FREED", provoke_lockdep_held_lock_freed },
	{ "LOCKDEP_SUSPICIOUS_RCU", provoke_lockdep_suspicious_rcu },
	{ "LOCKDEP_BAD_UNLOCK", provoke_lockdep_bad_unlock },
	{ "LOCKDEP_INCONSISTENT", provoke_lockdep_inconsistent },
	{ "LOCKDEP_NON_STATIC_KEY", provoke_lockdep_non_static_key },
	{ "ODEBUG_FREE_ACTIVE", provoke_odebug_free_active },
	{ "KASAN_GLOBAL_OOB", provoke_kasan_global_oob },
	{ "KASAN_INVALID_FREE", provoke_kasan_invalid_free },
	{ "UBSAN_SHIFT", provoke_ubsan_shift },
	{ "SLUB_REDZONE", provoke_slub_redzone },
	{ "SLUB_DOUBLE_FREE", provoke_slub_double_free },
	{ "SLUB_POISON", provoke_slub_poison },
	{ "SLUB_FREEPOINTER", provoke_slub_freepointer },
};

static ssize_t provoke_direct_write(struct file *file, const char __user *ubuf,
				    size_t count, loff_t *ppos)
{
	char buf[32];
	size_t len = min(count, sizeof(buf) - 1);
	int i, ret;

	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = '\0';
	strim(buf);
	for (i = 0; i < ARRAY_SIZE(provoke_triggers); i++) {
		if (strcmp(buf, provoke_triggers[i].name))
			continue;
		pr_info("Performing direct entry %s\n", provoke_triggers[i].name);
		ret = provoke_triggers[i].func();
		return ret ? ret : (ssize_t)count;
	}
	pr_err("unknown trigger '%s'\n", buf);
	return -EINVAL;
}

static ssize_t provoke_direct_read(struct file *file, char __user *ubuf,
				   size_t count, loff_t *ppos)
{
	char buf[512];
	size_t len = 0;
	int i;

	for (i = 0; i < ARRAY_SIZE(provoke_triggers); i++)
		len += scnprintf(buf + len, sizeof(buf) - len, "%s\n",
				 provoke_triggers[i].name);
	return simple_read_from_buffer(ubuf, count, ppos, buf, len);
}

static const struct file_operations provoke_direct_fops = {
	.owner = THIS_MODULE,
	.read = provoke_direct_read,
	.write = provoke_direct_write,
	.llseek = default_llseek,
};

static struct dentry *provoke_dir;

static int __init provoke_init(void)
{
	provoke_dir = debugfs_create_dir("unplug-provoke", NULL);
	debugfs_create_file("DIRECT", 0600, provoke_dir, NULL, &provoke_direct_fops);
	return 0;
}

static void __exit provoke_exit(void)
{
	debugfs_remove_recursive(provoke_dir);
	kmem_cache_destroy(provoke_cache);
	kmem_cache_destroy(provoke_cache_rcu);
}

module_init(provoke_init);
module_exit(provoke_exit);
MODULE_DESCRIPTION("Test only: makes the debug kernel print each report class the log parser knows");
MODULE_LICENSE("GPL");
