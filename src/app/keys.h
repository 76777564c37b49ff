// `drover keys`: the keys of signed update metadata (TUF) in a data directory.
//   gen          root keys (offline: files the operator keeps away from the server), online
//                timestamp, snapshot and targets keys, and root version 1
//   list         each role's keys, threshold, how many are online, and what is served
//   rotate-root  root version N+1, signed by enough of the old and the new root keys
//   sign-targets the server's artifacts as targets version N+1, signed by targets keys the
//                operator keeps offline (with --role: a delegated role's artifacts)
//   delegate     a delegated targets role: the artifacts whose paths match its patterns,
//                signed by its own keys (online, or kept by a team offline)
//   undelegate   removes one
// A running server takes a rotated root, and targets signed offline, at its next refresh
// (within 10 minutes, or at the next upload).
#pragma once

#include <string>
#include <vector>

namespace drover::app {

struct KeysArgs {
  std::string data = "drover-data";
  std::string root_key_dir = "drover-root-keys";  // where new root keys are written
  int root_keys = 1;
  int root_threshold = 1;
  std::string root_lifetime = "365d";
  // rotate-root
  std::vector<std::string> signing_keys;  // root key files that sign the new root
  int new_root_keys = 0;                  // > 0: new root keys replace the old
  int new_root_threshold = 0;
  std::vector<std::string> rotate;  // online roles given new keys
  // sign-targets
  std::vector<std::string> targets_keys;  // targets key files that sign
  std::string targets_lifetime = "90d";
  std::string role = "targets";  // sign-targets: the role signed; delegate, undelegate
  // delegate
  std::vector<std::string> paths;
  bool terminating = false;
  int role_keys = 1;
  int role_threshold = 1;
  std::string key_dir;  // "" keeps the role's keys online
  bool replace = false;
  bool json = false;
};

int run_keys_gen(const KeysArgs& args);
int run_keys_list(const KeysArgs& args);
int run_keys_rotate_root(const KeysArgs& args);
int run_keys_sign_targets(const KeysArgs& args);
int run_keys_delegate(const KeysArgs& args);
int run_keys_undelegate(const KeysArgs& args);

}  // namespace drover::app
