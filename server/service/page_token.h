// File: page_token.h
// Page tokens of the list RPCs: an opaque (base64url) form of where the
// previous page ended, and the page size rule shared by every list RPC
// (0 = 1000, at most 10000).
//
// Thread-safety: pure functions.
#ifndef VARSCOPE_SERVER_SERVICE_PAGE_TOKEN_H_
#define VARSCOPE_SERVER_SERVICE_PAGE_TOKEN_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "server/core/namespace/variable_store.h"

namespace varscope::service {

// The page size a request asks for, or INVALID_ARGUMENT when negative.
absl::StatusOr<size_t> PageSize(int requested);

// A cursor over variables (ListVariables).
std::string EncodeCursor(const core::ListCursor& cursor);
absl::StatusOr<core::ListCursor> DecodeCursor(const std::string& token);

// A cursor that is just the last name returned (ListScopes,
// ListCheckpoints); `kind` keeps one list's tokens out of another.
std::string EncodeNameToken(const std::string& kind, const std::string& name);
absl::StatusOr<std::string> DecodeNameToken(const std::string& kind,
                                            const std::string& token);

}  // namespace varscope::service

#endif  // VARSCOPE_SERVER_SERVICE_PAGE_TOKEN_H_
