#include "server/service/call_gate.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace varscope::service {
namespace {

constexpr absl::string_view kAuthorizationKey = "authorization";
constexpr absl::string_view kBearer = "bearer ";

// The token of "authorization: Bearer <token>", or an UNAUTHENTICATED error
// that says what to send. Never echoes what was sent.
absl::StatusOr<absl::string_view> BearerToken(
    const grpc::ServerContextBase& ctx) {
  const auto& metadata = ctx.client_metadata();
  auto it = metadata.find(grpc::string_ref(kAuthorizationKey.data(),
                                           kAuthorizationKey.size()));
  if (it == metadata.end()) {
    return absl::UnauthenticatedError(
        "this server requires a bearer token: send the metadata "
        "'authorization: Bearer <token>' (grpcurl -H)");
  }
  absl::string_view value(it->second.data(), it->second.size());
  if (value.size() <= kBearer.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kBearer.size()), kBearer)) {
    return absl::UnauthenticatedError(
        "the authorization metadata must be 'Bearer <token>'");
  }
  return absl::StripAsciiWhitespace(value.substr(kBearer.size()));
}

}  // namespace

absl::string_view ShortMethod(absl::string_view full_method) {
  const size_t dot = full_method.rfind('.');
  return dot == absl::string_view::npos ? full_method
                                        : full_method.substr(dot + 1);
}

Admission& Admission::operator=(Admission&& other) noexcept {
  if (this != &other) {
    Release();
    tokens_ = std::move(other.tokens_);
    principal_ = std::exchange(other.principal_, nullptr);
    peer_ = std::exchange(other.peer_, false);
    acting_owner_ = std::move(other.acting_owner_);
    acting_ = std::move(other.acting_);
    limiter_ = std::exchange(other.limiter_, nullptr);
    key_ = std::move(other.key_);
  }
  return *this;
}

void Admission::Release() {
  if (limiter_ != nullptr) limiter_->Release(key_);
  limiter_ = nullptr;
}

absl::Status Admission::CheckName(absl::string_view name) const {
  if (MayTouch(name)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      "token '", principal_->name, "' may not touch '", name,
      "': it is limited to the scopes ", absl::StrJoin(principal_->prefixes, ", ")));
}

// The principal of every peer call: role peer, no scope limits.
const core::Principal& PeerPrincipal() {
  static const core::Principal* const kPeer = new core::Principal{"peer", core::Role::kPeer, {}};
  return *kPeer;
}

void CallGate::SetPeerToken(absl::string_view token) {
  peer_digest_ = token.empty() ? "" : core::Sha256(token);
}

bool CallGate::IsPeer(const grpc::ServerContextBase& ctx) const {
  if (peer_digest_.empty()) return false;
  absl::StatusOr<absl::string_view> token = BearerToken(ctx);
  return token.ok() && core::ConstantTimeEquals(core::Sha256(*token), peer_digest_);
}

void CallGate::SetTokens(std::shared_ptr<const core::TokenTable> tokens) {
  absl::MutexLock lock(&mu_);
  tokens_ = std::move(tokens);
}

bool CallGate::auth_enabled() const {
  absl::MutexLock lock(&mu_);
  return tokens_ != nullptr;
}

absl::StatusOr<Admission> CallGate::Admit(const grpc::ServerContextBase& ctx,
                                          absl::string_view full_method) {
  const core::AccessRule* rule = core::RuleFor(full_method);
  if (rule == nullptr) {
    return absl::InternalError(
        absl::StrCat("no access rule for ", full_method));
  }
  Admission call;
  // Another shard: trusted with everything, never throttled.
  if (IsPeer(ctx)) {
    call.principal_ = &PeerPrincipal();
    call.peer_ = true;
    const auto& metadata = ctx.client_metadata();
    auto owner = metadata.find(kOwnerKey);
    if (owner != metadata.end()) {
      call.acting_owner_.assign(owner->second.data(), owner->second.size());
    }
    // Acting for a scope-limited client: its limits apply (listings,
    // watches).
    auto prefixes = metadata.find(kPrefixesKey);
    if (prefixes != metadata.end()) {
      auto acting = std::make_shared<core::Principal>(PeerPrincipal());
      acting->prefixes = absl::StrSplit(
          absl::string_view(prefixes->second.data(), prefixes->second.size()), ',',
          absl::SkipEmpty());
      call.acting_ = std::move(acting);
      call.principal_ = call.acting_.get();
    }
    return call;
  }
  if (rule->role == core::Role::kPeer) {
    return absl::PermissionDeniedError(absl::StrCat(
        ShortMethod(full_method), " is called by the cluster's shards only"));
  }
  {
    absl::MutexLock lock(&mu_);
    call.tokens_ = tokens_;
  }
  if (call.tokens_ != nullptr) {
    absl::StatusOr<absl::string_view> token = BearerToken(ctx);
    if (!token.ok()) return token.status();
    call.principal_ = call.tokens_->Authenticate(*token);
    if (call.principal_ == nullptr) {
      return absl::UnauthenticatedError(
          "the bearer token is not valid (unknown or revoked)");
    }
    if (!call.principal_->Allows(*rule)) {
      const core::Principal& who = *call.principal_;
      if (who.role < rule->role) {
        return absl::PermissionDeniedError(absl::StrCat(
            "token '", who.name, "' has role ", core::RoleName(who.role),
            "; ", ShortMethod(full_method), " needs role ",
            core::RoleName(rule->role)));
      }
      return absl::PermissionDeniedError(absl::StrCat(
          ShortMethod(full_method), " acts on the whole store, and token '",
          who.name, "' is limited to the scopes ",
          absl::StrJoin(who.prefixes, ", ")));
    }
  }
  // One client = one connection (its peer address): a job whose workers
  // share a token is not throttled as one client.
  std::string key = ctx.peer();
  if (!limiter_.Acquire(key)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this client already has ", limiter_.limit(),
        " calls in flight, the server's --max_in_flight_per_client; wait for "
        "some to finish"));
  }
  call.limiter_ = &limiter_;
  call.key_ = std::move(key);
  return call;
}

}  // namespace varscope::service
