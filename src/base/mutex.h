// Mutex, MutexLock and CondVar: std::mutex with clang's thread-safety annotations, so that
// `-Wthread-safety` (on in every clang build, an error there) checks at compile time what a
// comment could only ask: each GUARDED_BY member is touched only with its mutex held, each
// REQUIRES function is called only with it held, and locks are taken in the order the
// ACQUIRED_AFTER/ACQUIRED_BEFORE annotations write down. Under GCC the annotations are empty.
// Each Mutex also has a LockLevel (base/lock_order.h): builds without NDEBUG check at run
// time that a thread takes locks in increasing level, across functions and objects.
#pragma once

#include <condition_variable>
#include <mutex>

#include "base/lock_order.h"

#if defined(__clang__)
#define DROVER_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define DROVER_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) DROVER_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY DROVER_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) DROVER_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) DROVER_THREAD_ANNOTATION(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) DROVER_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) DROVER_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define REQUIRES(...) DROVER_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) DROVER_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) DROVER_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) DROVER_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) DROVER_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) DROVER_THREAD_ANNOTATION(assert_capability(x))
#define NO_THREAD_SAFETY_ANALYSIS DROVER_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace drover {

class CAPABILITY("mutex") Mutex {
 public:
  // A leaf: nothing else may be locked while it is held.
  Mutex() = default;
  explicit Mutex(LockLevel level) : level_(level) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ACQUIRE() {
    if constexpr (lock_order::kChecked) lock_order::acquire_or_abort(level_);
    mu_.lock();
  }
  void unlock() RELEASE() {
    mu_.unlock();
    if constexpr (lock_order::kChecked) lock_order::release(level_);
  }
  // Tells the thread-safety analysis that the caller holds this mutex where it cannot see
  // so (a callback made under the lock through an interface). Checks nothing at run time:
  // the caller's own annotations say why it holds.
  void assert_held() const ASSERT_CAPABILITY(this) {}
  bool try_lock() TRY_ACQUIRE(true) {
    if constexpr (lock_order::kChecked) lock_order::acquire_or_abort(level_);
    if (mu_.try_lock()) return true;
    if constexpr (lock_order::kChecked) lock_order::release(level_);
    return false;
  }

 private:
  std::mutex mu_;
  LockLevel level_ = LockLevel::kLeaf;
};

// Holds a Mutex for its scope.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() RELEASE() { mu_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

// A condition variable over a Mutex the caller holds.
class CondVar {
 public:
  // Releases `mu` while it waits and holds it again when it returns (once `ready()` is true).
  template <typename Predicate>
  void wait(Mutex& mu, Predicate ready) REQUIRES(mu) {
    cv_.wait(mu, std::move(ready));
  }
  void wait(Mutex& mu) REQUIRES(mu) { cv_.wait(mu); }
  template <typename TimePoint>
  void wait_until(Mutex& mu, TimePoint t) REQUIRES(mu) {
    cv_.wait_until(mu, t);
  }
  template <typename Duration, typename Predicate>
  bool wait_for(Mutex& mu, Duration d, Predicate ready) REQUIRES(mu) {
    return cv_.wait_for(mu, d, std::move(ready));
  }
  void notify_one() { cv_.notify_one(); }
  void notify_all() { cv_.notify_all(); }

 private:
  std::condition_variable_any cv_;
};

}  // namespace drover
