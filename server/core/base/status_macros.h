// File: status_macros.h
// Early-return helpers for absl::Status / absl::StatusOr. Debian's Abseil
// (20220623) ships neither macro, so we define our own once.
#ifndef VARSCOPE_SERVER_CORE_BASE_STATUS_MACROS_H_
#define VARSCOPE_SERVER_CORE_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define VARSCOPE_CONCAT_INNER_(a, b) a##b
#define VARSCOPE_CONCAT_(a, b) VARSCOPE_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define VARSCOPE_RETURN_IF_ERROR(expr)                 \
  do {                                                 \
    ::absl::Status varscope_status_ = (expr);          \
    if (!varscope_status_.ok()) return varscope_status_; \
  } while (false)

// `lhs = value of expr`, or returns its status from the enclosing function.
#define VARSCOPE_ASSIGN_OR_RETURN(lhs, expr)                                  \
  VARSCOPE_ASSIGN_OR_RETURN_IMPL_(VARSCOPE_CONCAT_(varscope_or_, __LINE__), \
                                  lhs, expr)
#define VARSCOPE_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                    \
  if (!tmp.ok()) return std::move(tmp).status();        \
  lhs = std::move(tmp).value()

#endif  // VARSCOPE_SERVER_CORE_BASE_STATUS_MACROS_H_
