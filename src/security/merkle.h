// Merkle trees as Certificate Transparency defines them (RFC 6962 §2.1, RFC 9162 §2.1): the
// hash of a leaf is SHA-256(0x00 ‖ entry), of a node SHA-256(0x01 ‖ left ‖ right), and a
// tree of n > 1 leaves splits at the largest power of two below n. The audit log is one; its
// inclusion proofs show that an entry is in a tree of a given root, its consistency proofs
// that a tree is an append-only extension of an older one.
//
// Hashes are 32 raw bytes in std::string, as in crypto.h. Thread-safety: a MerkleTree is a
// plain value (const calls may run concurrently, appends may not); the functions are pure.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace drover::security {

std::string merkle_leaf_hash(std::string_view entry);
std::string merkle_node_hash(std::string_view left, std::string_view right);
// The root of the tree with no leaves: SHA-256 of nothing.
std::string merkle_empty_root();

// An append-only tree of leaf hashes that answers for any of its past sizes. Every complete,
// aligned subtree's hash is kept (twice the leaves' 32 bytes), so a root or proof costs
// O(log² n) hashes, not O(n).
class MerkleTree {
 public:
  // `leaf_hash`: 32 bytes (a merkle_leaf_hash). kInvalidArgument otherwise.
  Status append(std::string_view leaf_hash);
  uint64_t size() const { return levels_.empty() ? 0 : levels_[0].size(); }
  // Forgets the leaves from `size` on (an append whose entry could not be stored).
  void truncate(uint64_t size);

  // The root of the first `size` leaves. kInvalidArgument beyond size().
  Result<std::string> root(uint64_t size) const;
  std::string root() const;
  // The leaf hash at `index`. kNotFound beyond the tree.
  Result<std::string> leaf(uint64_t index) const;

  // The audit path of leaf `index` in the tree of the first `size` leaves (RFC 9162
  // §2.1.3.1). kInvalidArgument unless index < size <= size().
  Result<std::vector<std::string>> inclusion_proof(uint64_t index, uint64_t size) const;
  // The proof that the tree of `old_size` leaves is a prefix of the tree of `new_size`
  // (RFC 9162 §2.1.4.1); empty when old_size is 0 or equals new_size. kInvalidArgument unless
  // old_size <= new_size <= size().
  Result<std::vector<std::string>> consistency_proof(uint64_t old_size, uint64_t new_size) const;

 private:
  using Digest = std::array<char, 32>;
  // The hash of leaves [start, start + count), count >= 1, start + count <= size().
  Digest subtree(uint64_t start, uint64_t count) const;
  void path(uint64_t index, uint64_t start, uint64_t count, std::vector<std::string>& out) const;
  void subproof(uint64_t old_size, uint64_t start, uint64_t count, bool whole,
                std::vector<std::string>& out) const;

  // levels_[j][i]: the hash of leaves [i·2^j, (i+1)·2^j), for every such complete subtree.
  std::vector<std::vector<Digest>> levels_;
};

// Whether `proof` shows the leaf of hash `leaf_hash` at `index` in the tree of `size` leaves
// and root `root` (RFC 9162 §2.1.3.2). kInvalidArgument saying what fails: an index outside
// the tree, a proof too short or too long, a root that does not match, hashes not 32 bytes.
Status verify_inclusion(uint64_t index, uint64_t size, std::string_view leaf_hash,
                        std::span<const std::string> proof, std::string_view root);

// Whether `proof` shows the tree of `old_size` leaves and root `old_root` to be a prefix of
// the tree of `new_size` leaves and root `new_root` (RFC 9162 §2.1.4.2). A smaller new tree,
// a proof with hashes left over or missing, or roots that do not match: kInvalidArgument.
Status verify_consistency(uint64_t old_size, uint64_t new_size, std::string_view old_root,
                          std::string_view new_root, std::span<const std::string> proof);

}  // namespace drover::security
