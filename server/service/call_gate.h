// File: call_gate.h
// The door every varscope RPC goes through first: reads the bearer token,
// checks the caller's role for the method, and takes one of the client's
// in-flight slots (given back when the Admission is destroyed). Health and
// reflection do not pass through it and stay open.
//
//   VARSCOPE_ASSIGN_OR_RETURN(Admission call,
//       gate->Admit(*ctx, "varscope.v1.VariableData.Push"));
//   VARSCOPE_RETURN_IF_ERROR(call.CheckName(update.name()));
//
// Thread-safety: CallGate is thread-safe; tokens can be swapped (SIGHUP)
// while calls run, and an admitted call keeps the table it was admitted by.
#ifndef VARSCOPE_SERVER_SERVICE_CALL_GATE_H_
#define VARSCOPE_SERVER_SERVICE_CALL_GATE_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/core/access/access.h"

namespace varscope::service {

// Metadata a shard adds to a call it makes for a client, trusted from
// peers only: the client's session owner (its token's name) and the scope
// prefixes its token is limited to (comma-separated; absent = all).
inline constexpr char kOwnerKey[] = "varscope-owner";
inline constexpr char kPrefixesKey[] = "varscope-prefixes";

// One admitted call. Move-only; releases its in-flight slot when destroyed.
class Admission {
 public:
  Admission() = default;
  Admission(Admission&& other) noexcept { *this = std::move(other); }
  Admission& operator=(Admission&& other) noexcept;
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;
  ~Admission() { Release(); }

  // PERMISSION_DENIED unless the caller's token covers `name`.
  absl::Status CheckName(absl::string_view name) const;
  // For filtering listings and watch events.
  bool MayTouch(absl::string_view name) const {
    return principal_ == nullptr || principal_->MayTouch(name);
  }
  // Null when the server runs without tokens (and the call is not a
  // peer's).
  const core::Principal* principal() const { return principal_; }
  // The caller is another shard of the cluster (the cluster token).
  bool peer() const { return peer_; }
  // Who owns the sessions this call opens or uses: the token's name (""
  // without tokens); for a peer, the client it acts for (its
  // `varscope-owner` metadata).
  std::string owner() const {
    if (peer_) return acting_owner_;
    return principal_ != nullptr ? principal_->name : "";
  }

 private:
  friend class CallGate;
  void Release();

  std::shared_ptr<const core::TokenTable> tokens_;  // keeps principal_ alive
  const core::Principal* principal_ = nullptr;
  bool peer_ = false;
  std::string acting_owner_;  // peers only
  // Peers acting for a scope-limited client: principal_ points here.
  std::shared_ptr<const core::Principal> acting_;
  core::InFlightLimiter* limiter_ = nullptr;  // null = holds no slot
  std::string key_;
};

class CallGate {
 public:
  // max_in_flight_per_client <= 0 = unlimited.
  explicit CallGate(int max_in_flight_per_client)
      : limiter_(max_in_flight_per_client) {}

  // Installs a token table; null turns authentication off.
  void SetTokens(std::shared_ptr<const core::TokenTable> tokens)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The cluster token: its bearer is a peer shard (role peer, never
  // throttled: it carries many clients' calls). Set once, before serving.
  void SetPeerToken(absl::string_view token);
  // True when the call carries the cluster token.
  bool IsPeer(const grpc::ServerContextBase& ctx) const;
  bool auth_enabled() const ABSL_LOCKS_EXCLUDED(mu_);

  // UNAUTHENTICATED (no or unknown token), PERMISSION_DENIED (role too low,
  // a scope-limited token on a global method, or a peer-only method) or
  // RESOURCE_EXHAUSTED (the client's in-flight limit). `full_method` is the
  // protobuf full name.
  absl::StatusOr<Admission> Admit(const grpc::ServerContextBase& ctx,
                                  absl::string_view full_method)
      ABSL_LOCKS_EXCLUDED(mu_);

  const core::InFlightLimiter& limiter() const { return limiter_; }

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const core::TokenTable> tokens_ ABSL_GUARDED_BY(mu_);
  std::string peer_digest_;  // SHA-256 of the cluster token; "" = none
  core::InFlightLimiter limiter_;
};

// The method name without the package and service ("Push").
absl::string_view ShortMethod(absl::string_view full_method);

}  // namespace varscope::service

#endif  // VARSCOPE_SERVER_SERVICE_CALL_GATE_H_
