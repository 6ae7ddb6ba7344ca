#include "server/core/tensor/variable_cell.h"

#include <cstring>
#include <new>

namespace varscope::core {

// value_mu_ stays held from an in-place BeginWrite to its Commit or Abort,
// a span the analysis cannot follow.
absl::StatusOr<uint8_t*> VariableCell::BeginWrite(int64_t touched_bytes,
                                                  bool keep_old,
                                                  BufferPool* pool)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  value_mu_.Lock();
  if (keep_old && touched_bytes <= kMaxInPlaceBytes && value_.use_count() == 1) {
    // Nobody else holds the buffer and nobody can take it while we hold
    // value_mu_: change it in place.
    in_place_ = true;
    return const_cast<TensorBuffer&>(*value_).data();
  }
  std::shared_ptr<const TensorBuffer> current = value_;
  value_mu_.Unlock();
  in_place_ = false;
  try {
    pending_ = keep_old
                   ? TensorBuffer::CopyOf(current->data(), current->size(), pool)
                   : TensorBuffer::Allocate(current->size(), pool);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        "out of memory while copying a variable for an update");
  }
  return pending_->data();
}

uint64_t VariableCell::Commit() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (in_place_) {
    in_place_ = false;
    const uint64_t version = ++version_;
    value_mu_.Unlock();
    return version;
  }
  return Install(std::move(pending_));
}

void VariableCell::Abort() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (in_place_) {
    in_place_ = false;
    value_mu_.Unlock();
  }
  pending_.reset();
}

uint64_t VariableCell::Install(std::shared_ptr<const TensorBuffer> value) {
  std::shared_ptr<const TensorBuffer> old;
  absl::MutexLock lock(&value_mu_);
  old = std::move(value_);  // freed after unlocking, outside the lock
  value_ = std::move(value);
  return ++version_;
}

}  // namespace varscope::core
