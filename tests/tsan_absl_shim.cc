// ThreadSanitizer support for Debian's Abseil, which is not built with
// TSan: its Mutex synchronizes with atomics TSan cannot see, so every
// guarded access would look like a race. Linked only into the TSan build of
// the tests, this file interposes the absl::Mutex entry points (defining
// them here wins over the shared library, and the library's own calls go
// through the PLT), tells TSan about each lock and unlock with its mutex
// annotation API, and forwards to the real function found with
// dlsym(RTLD_NEXT). Condition predicates, which Abseil may evaluate in
// another thread while it holds the lock internally, run with TSan's access
// tracking off (races inside a predicate are not reported).
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>

// Part of the TSan runtime, not declared in tsan_interface.h.
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();

#include <cstdlib>

#include "absl/synchronization/mutex.h"

namespace {

template <typename Fn>
Fn Real(const char* symbol) {
  void* f = dlsym(RTLD_NEXT, symbol);
  if (f == nullptr) {
    std::fprintf(stderr, "tsan_absl_shim: %s not found\n", symbol);
    std::abort();
  }
  return reinterpret_cast<Fn>(f);
}

#define VARSCOPE_REAL(type, symbol) \
  static const auto real = Real<type>(symbol)

using MutexFn = void (*)(absl::Mutex*);
using TryFn = bool (*)(absl::Mutex*);
using CondFn = void (*)(absl::Mutex*, const absl::Condition&);
using CondTimeoutFn = bool (*)(absl::Mutex*, const absl::Condition&,
                               absl::Duration);
using CondDeadlineFn = bool (*)(absl::Mutex*, const absl::Condition&, absl::Time);
using EvalFn = bool (*)(const absl::Condition*);

void Acquired(void* mu, unsigned flags) {
  __tsan_mutex_pre_lock(mu, flags);
  __tsan_mutex_post_lock(mu, flags, 0);
}
void Releasing(void* mu, unsigned flags) {
  __tsan_mutex_pre_unlock(mu, flags);
  __tsan_mutex_post_unlock(mu, flags);
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  VARSCOPE_REAL(MutexFn, "_ZN4absl7debian35Mutex4LockEv");
  __tsan_mutex_pre_lock(this, 0);
  real(this);
  __tsan_mutex_post_lock(this, 0, 0);
}

void Mutex::Unlock() {
  VARSCOPE_REAL(MutexFn, "_ZN4absl7debian35Mutex6UnlockEv");
  __tsan_mutex_pre_unlock(this, 0);
  real(this);
  __tsan_mutex_post_unlock(this, 0);
}

void Mutex::ReaderLock() {
  VARSCOPE_REAL(MutexFn, "_ZN4absl7debian35Mutex10ReaderLockEv");
  __tsan_mutex_pre_lock(this, __tsan_mutex_read_lock);
  real(this);
  __tsan_mutex_post_lock(this, __tsan_mutex_read_lock, 0);
}

void Mutex::ReaderUnlock() {
  VARSCOPE_REAL(MutexFn, "_ZN4absl7debian35Mutex12ReaderUnlockEv");
  __tsan_mutex_pre_unlock(this, __tsan_mutex_read_lock);
  real(this);
  __tsan_mutex_post_unlock(this, __tsan_mutex_read_lock);
}

bool Mutex::TryLock() {
  VARSCOPE_REAL(TryFn, "_ZN4absl7debian35Mutex7TryLockEv");
  __tsan_mutex_pre_lock(this, __tsan_mutex_try_lock);
  const bool locked = real(this);
  __tsan_mutex_post_lock(this, locked ? __tsan_mutex_try_lock
                                      : __tsan_mutex_try_lock_failed, 0);
  return locked;
}

// Await releases the lock while it waits and holds it again on return.
void Mutex::Await(const Condition& cond) {
  VARSCOPE_REAL(CondFn, "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  Releasing(this, 0);
  real(this, cond);
  Acquired(this, 0);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  VARSCOPE_REAL(CondTimeoutFn,
                "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  Releasing(this, 0);
  const bool met = real(this, cond, timeout);
  Acquired(this, 0);
  return met;
}

void Mutex::LockWhen(const Condition& cond) {
  VARSCOPE_REAL(CondFn, "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  __tsan_mutex_pre_lock(this, 0);
  real(this, cond);
  __tsan_mutex_post_lock(this, 0, 0);
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  VARSCOPE_REAL(CondDeadlineFn,
                "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  Releasing(this, 0);
  const bool met = real(this, cond, deadline);
  Acquired(this, 0);
  return met;
}

// The LockWhen variants hold the lock on return whether or not the
// condition was met (absl::Notification's timed wait uses one).
bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  VARSCOPE_REAL(CondTimeoutFn,
                "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  __tsan_mutex_pre_lock(this, 0);
  const bool met = real(this, cond, timeout);
  __tsan_mutex_post_lock(this, 0, 0);
  return met;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  VARSCOPE_REAL(CondDeadlineFn,
                "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  __tsan_mutex_pre_lock(this, 0);
  const bool met = real(this, cond, deadline);
  __tsan_mutex_post_lock(this, 0, 0);
  return met;
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  VARSCOPE_REAL(CondFn, "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE");
  __tsan_mutex_pre_lock(this, __tsan_mutex_read_lock);
  real(this, cond);
  __tsan_mutex_post_lock(this, __tsan_mutex_read_lock, 0);
}

bool Mutex::ReaderTryLock() {
  VARSCOPE_REAL(TryFn, "_ZN4absl7debian35Mutex13ReaderTryLockEv");
  const unsigned flags = __tsan_mutex_read_lock | __tsan_mutex_try_lock;
  __tsan_mutex_pre_lock(this, flags);
  const bool locked = real(this);
  __tsan_mutex_post_lock(this, locked ? flags : flags | __tsan_mutex_try_lock_failed, 0);
  return locked;
}

bool Condition::Eval() const {
  VARSCOPE_REAL(EvalFn, "_ZNK4absl7debian39Condition4EvalEv");
  __tsan_ignore_thread_begin();
  const bool result = real(this);
  __tsan_ignore_thread_end();
  return result;
}

ABSL_NAMESPACE_END
}  // namespace absl
