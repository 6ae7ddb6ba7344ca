// File: page_token.h
// Page tokens of the list RPCs: an opaque (base64url) form of where the
// previous page ended, bound to the listing's arguments (`query`: a token
// of one listing is refused by a listing with other arguments), and the
// page size rule shared by every list RPC (0 = 1000, at most 10000).
//
// Thread-safety: pure functions.
#ifndef VARSCOPE_SERVER_SERVICE_PAGE_TOKEN_H_
#define VARSCOPE_SERVER_SERVICE_PAGE_TOKEN_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/namespace/variable_store.h"

namespace varscope::service {

// The page size a request asks for, or INVALID_ARGUMENT when negative.
absl::StatusOr<size_t> PageSize(int requested);

// A cursor over variables (ListVariables).
std::string EncodeCursor(const core::ListCursor& cursor, absl::string_view query);
absl::StatusOr<core::ListCursor> DecodeCursor(const std::string& token,
                                              absl::string_view query);

// Where a sessions page ended: the last session's shard and id
// (ListSessions, ordered by shard, then id).
struct SessionCursor {
  int shard = -1;
  uint64_t id = 0;
  bool operator<(const SessionCursor& o) const {
    return shard != o.shard ? shard < o.shard : id < o.id;
  }
};
std::string EncodeSessionToken(const SessionCursor& last);
absl::StatusOr<SessionCursor> DecodeSessionToken(const std::string& token);

// A cursor that is just the last name returned (ListScopes,
// ListCheckpoints); `query` names the list and its arguments.
std::string EncodeNameToken(absl::string_view query, const std::string& name);
absl::StatusOr<std::string> DecodeNameToken(absl::string_view query,
                                            const std::string& token);

}  // namespace varscope::service

#endif  // VARSCOPE_SERVER_SERVICE_PAGE_TOKEN_H_
