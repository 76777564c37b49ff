// The files of a signed update metadata repository (<data>/tuf, fleet/update_repository.h),
// as the server that publishes them (update_repository.cc) and the `drover keys` operations
// that change them offline (repository_keys.cc) both read and write them. Internal to
// src/fleet/.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/file_system.h"
#include "base/result.h"
#include "model/artifact.h"
#include "security/crypto.h"
#include "security/tuf_metadata.h"
#include "security/tuf_repository.h"

namespace drover::repository_files {

using KeyRing = std::map<std::string, std::shared_ptr<security::SigningKey>>;  // by key id

std::string metadata_dir(const std::string& dir);
std::string keys_dir(const std::string& dir);
// The key id of an Ed25519 key Drover made.
std::string key_id(const security::SigningKey& k);

// "<N>.<role>.json" -> (N, role); nullopt for any other name.
std::optional<std::pair<int64_t, std::string>> split_versioned(std::string_view file);
// "<N>.<role>.json" -> N, for the role asked; nullopt for any other name.
std::optional<int64_t> versioned(std::string_view file, std::string_view role);
// The highest N of "<N>.<role>.json" among `names` (0 when none).
int64_t highest(const std::vector<std::string>& names, std::string_view role);

Error corrupt(const std::string& what);

// The names in <dir>/metadata. kNotFound, saying how to make a repository, when there is none.
Result<std::vector<std::string>> list_metadata(FileSystem& fs, const std::string& dir);

// The root chain from 1.root.json, each checked as a client checks it: the last one, and
// every version's bytes. kNotFound without a root, kCorruption for one that does not verify.
Result<std::pair<security::tuf::Metadata, std::vector<std::string>>> load_roots(
    FileSystem& fs, const std::string& dir, const std::vector<std::string>& names);
// The online keys in <dir>/keys, each in the file its key id names.
Result<KeyRing> load_keys(FileSystem& fs, const std::string& dir);

// The keys among `ring` that `role` names, and whether they meet its threshold.
std::vector<const security::SigningKey*> signers(const security::tuf::RoleKeys& role,
                                                 const KeyRing& ring);
bool enough(const security::tuf::RoleKeys& role,
            const std::vector<const security::SigningKey*>& keys);

// Writes atomically; kIo naming the path.
Status write_file(FileSystem& fs, const std::string& path, std::string_view bytes);
// A new key, written (owner-only) to `dir` under the name `name` gives it.
Result<security::SigningKey> new_key_file(FileSystem& fs, const std::string& dir,
                                          std::string (*name)(const security::SigningKey&),
                                          std::string* path_out);

// The artifacts `role` signs among `roles` (the delegations in their search order) as
// targets: "<name>/<version>", their length, SHA-256 and Drover's metadata.
std::map<std::string, security::tuf::TargetFile> targets_of(
    const std::vector<Artifact>& list, const std::vector<security::tuf::DelegatedRole>& roles,
    std::string_view role);
std::vector<security::tuf::DelegatedRole> delegated_roles(
    const std::vector<security::tuf::DelegationSpec>& specs);

}  // namespace drover::repository_files
