// File: lock_order.h
// The one lock order of the whole server. Every mutex in varscoped has a
// level below; a thread holding a lock of level N acquires only locks of a
// higher level (or, within one level, in the order that level names).
// Abseil's deadlock detector (abort mode in every test binary, see
// tests/deadlock_detection.cc) checks this at run time on every acquisition;
// clang's -Wthread-safety checks the ABSL_ACQUIRED_BEFORE and
// ABSL_EXCLUSIVE_LOCKS_REQUIRED annotations that express it per class.
//
//   1  Checkpointer::mu_            one save, restore or import at a time
//   2  SessionManager::mu_, then    never held while calling the store
//      Session::mu_
//   3  VariableStore::barrier_      the update barrier: held shared by every
//                                   change (create, delete, push, optimizer
//                                   settings) from its decision until it is
//                                   visible; exclusively by a checkpoint's
//                                   snapshot and a restore's swap, so those
//                                   never see half of a change
//   4  VariableCell::writer_mu_     serializes writers of one variable; a
//                                   multi-variable change takes them in
//                                   ascending name order (slots included)
//   5  VariableStore::mu_           names, pending creations, collections
//   6  VariableCell::value_mu_      the value pointer and version; several
//                                   in ascending name order
//   7  leaves                       RevisionClock::reserve_mu_, Journal::mu_,
//                                   BufferPool, ChangeFeed, Wait: nothing is
//                                   acquired while one of these is held
//
// Service-layer mutexes (CallGate, reactor states) are leaves too and are
// never held while calling the core.
//
// Notifications: change-feed listeners (waits, watches) are called with no
// lock of levels 1-6 held and with the feed's own lock released, and a wait
// never runs its attempt from inside its own notification (see wait.h), so
// a listener may call back into the store.
//
// Disk waits: the log's fsync (Journal::Append) is waited for holding at
// most level 3 shared and, for a strict-durability push or an optimizer
// change, level 4 of the variables being changed (other writers of those
// variables must wait for it anyway). Never level 5 or 6: readers, lookups
// and writers of other variables never wait on the disk. A checkpoint
// writes its files after releasing level 3.
#ifndef VARSCOPE_SERVER_CORE_BASE_LOCK_ORDER_H_
#define VARSCOPE_SERVER_CORE_BASE_LOCK_ORDER_H_
#endif  // VARSCOPE_SERVER_CORE_BASE_LOCK_ORDER_H_
