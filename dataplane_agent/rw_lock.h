#pragma once
// A writer-preferring reader-writer lock. std::shared_mutex on glibc prefers
// readers, so a steady stream of fence checks could starve a revoke forever;
// here a waiting writer (a revoke, a shutdown) blocks new readers, and gets
// the lock as soon as the readers already inside leave. Meets the
// SharedMutex requirements, so std::shared_lock / std::unique_lock work.
//
// Not recursive: a thread holding it shared must not take it again while a
// writer may be waiting (FenceState guards against that for its own calls).

#include <pthread.h>

#include <cstdlib>

namespace tenure::agent {

class RwLock {
 public:
  RwLock() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    if (pthread_rwlock_init(&lock_, &attr) != 0) std::abort();
    pthread_rwlockattr_destroy(&attr);
  }
  ~RwLock() { pthread_rwlock_destroy(&lock_); }
  RwLock(const RwLock&) = delete;
  RwLock& operator=(const RwLock&) = delete;

  void lock() { check(pthread_rwlock_wrlock(&lock_)); }
  bool try_lock() { return pthread_rwlock_trywrlock(&lock_) == 0; }
  void unlock() { check(pthread_rwlock_unlock(&lock_)); }
  void lock_shared() { check(pthread_rwlock_rdlock(&lock_)); }
  bool try_lock_shared() { return pthread_rwlock_tryrdlock(&lock_) == 0; }
  void unlock_shared() { check(pthread_rwlock_unlock(&lock_)); }

 private:
  // A failing pthread call here is a broken invariant (EDEADLK, EINVAL).
  static void check(int rc) {
    if (rc != 0) std::abort();
  }
  pthread_rwlock_t lock_;
};

}  // namespace tenure::agent
