#include "security/merkle.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "security/crypto.h"

namespace drover::security {
namespace {

constexpr size_t kHashSize = 32;

// The largest power of two below n, n >= 2: where a tree of n leaves splits.
uint64_t split_point(uint64_t n) { return std::bit_floor(n - 1); }

bool is_hash(std::string_view h) { return h.size() == kHashSize; }

std::string out_of_range_message(std::string_view what, uint64_t a, uint64_t b) {
  return std::string(what) + " " + std::to_string(a) + " is outside a tree of " + std::to_string(b);
}

}  // namespace

std::string merkle_leaf_hash(std::string_view entry) {
  Sha256 h;
  h.update(std::string_view("\0", 1));
  h.update(entry);
  return h.finish();
}

std::string merkle_node_hash(std::string_view left, std::string_view right) {
  Sha256 h;
  h.update(std::string_view("\1", 1));
  h.update(left);
  h.update(right);
  return h.finish();
}

std::string merkle_empty_root() { return sha256(""); }

Status MerkleTree::append(std::string_view leaf_hash) {
  if (!is_hash(leaf_hash)) return invalid_argument("a leaf hash is 32 bytes");
  Digest d;
  std::memcpy(d.data(), leaf_hash.data(), kHashSize);
  if (levels_.empty()) levels_.emplace_back();
  levels_[0].push_back(d);
  // Every level whose count just became even gains a parent.
  for (size_t j = 0; levels_[j].size() % 2 == 0; ++j) {
    if (j + 1 == levels_.size()) levels_.emplace_back();
    const Digest& l = levels_[j][levels_[j].size() - 2];
    const Digest& r = levels_[j].back();
    const std::string parent = merkle_node_hash({l.data(), kHashSize}, {r.data(), kHashSize});
    Digest p;
    std::memcpy(p.data(), parent.data(), kHashSize);
    levels_[j + 1].push_back(p);
  }
  return ok_status();
}

void MerkleTree::truncate(uint64_t size) {
  // Level j holds exactly the complete subtrees of 2^j leaves: floor(size / 2^j) of them.
  for (size_t j = 0; j < levels_.size(); ++j)
    levels_[j].resize(std::min<uint64_t>(levels_[j].size(), size >> j));
}

MerkleTree::Digest MerkleTree::subtree(uint64_t start, uint64_t count) const {
  if (std::has_single_bit(count) && start % count == 0) {
    return levels_[std::countr_zero(count)][start / count];
  }
  const uint64_t k = split_point(count);
  const Digest l = subtree(start, k);
  const Digest r = subtree(start + k, count - k);
  const std::string h = merkle_node_hash({l.data(), kHashSize}, {r.data(), kHashSize});
  Digest d;
  std::memcpy(d.data(), h.data(), kHashSize);
  return d;
}

Result<std::string> MerkleTree::root(uint64_t size) const {
  if (size > this->size())
    return invalid_argument(out_of_range_message("size", size, this->size()));
  if (size == 0) return merkle_empty_root();
  const Digest d = subtree(0, size);
  return std::string(d.data(), kHashSize);
}

std::string MerkleTree::root() const { return *root(size()); }

Result<std::string> MerkleTree::leaf(uint64_t index) const {
  if (index >= size()) return not_found(out_of_range_message("leaf", index, size()));
  return std::string(levels_[0][index].data(), kHashSize);
}

// PATH(m, D[start : start+count]), appended to `out` leaf side first.
void MerkleTree::path(uint64_t index, uint64_t start, uint64_t count,
                      std::vector<std::string>& out) const {
  if (count <= 1) return;
  const uint64_t k = split_point(count);
  Digest sibling;
  if (index < k) {
    path(index, start, k, out);
    sibling = subtree(start + k, count - k);
  } else {
    path(index - k, start + k, count - k, out);
    sibling = subtree(start, k);
  }
  out.emplace_back(sibling.data(), kHashSize);
}

Result<std::vector<std::string>> MerkleTree::inclusion_proof(uint64_t index, uint64_t size) const {
  if (size > this->size())
    return invalid_argument(out_of_range_message("size", size, this->size()));
  if (index >= size) return invalid_argument(out_of_range_message("leaf", index, size));
  std::vector<std::string> out;
  path(index, 0, size, out);
  return out;
}

// SUBPROOF(m, D[start : start+count], b) of RFC 6962 §2.1.2.
void MerkleTree::subproof(uint64_t old_size, uint64_t start, uint64_t count, bool whole,
                          std::vector<std::string>& out) const {
  if (old_size == count) {
    if (!whole) {
      const Digest d = subtree(start, count);
      out.emplace_back(d.data(), kHashSize);
    }
    return;
  }
  const uint64_t k = split_point(count);
  Digest other;
  if (old_size <= k) {
    subproof(old_size, start, k, whole, out);
    other = subtree(start + k, count - k);
  } else {
    subproof(old_size - k, start + k, count - k, false, out);
    other = subtree(start, k);
  }
  out.emplace_back(other.data(), kHashSize);
}

Result<std::vector<std::string>> MerkleTree::consistency_proof(uint64_t old_size,
                                                               uint64_t new_size) const {
  if (new_size > size()) return invalid_argument(out_of_range_message("size", new_size, size()));
  if (old_size > new_size)
    return invalid_argument(out_of_range_message("size", old_size, new_size));
  std::vector<std::string> out;
  if (old_size == 0 || old_size == new_size) return out;
  subproof(old_size, 0, new_size, true, out);
  return out;
}

Status verify_inclusion(uint64_t index, uint64_t size, std::string_view leaf_hash,
                        std::span<const std::string> proof, std::string_view root) {
  if (index >= size) return invalid_argument(out_of_range_message("leaf", index, size));
  if (!is_hash(leaf_hash) || !is_hash(root)) return invalid_argument("a hash is 32 bytes");
  uint64_t fn = index;
  uint64_t sn = size - 1;
  std::string r(leaf_hash);
  for (const std::string& p : proof) {
    if (!is_hash(p)) return invalid_argument("a proof hash is 32 bytes");
    if (sn == 0) return invalid_argument("the inclusion proof has hashes left over");
    if ((fn & 1) != 0 || fn == sn) {
      r = merkle_node_hash(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = merkle_node_hash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return invalid_argument("the inclusion proof is too short");
  if (!constant_time_equal(r, root)) {
    return invalid_argument("the inclusion proof leads to another root");
  }
  return ok_status();
}

Status verify_consistency(uint64_t old_size, uint64_t new_size, std::string_view old_root,
                          std::string_view new_root, std::span<const std::string> proof) {
  if (!is_hash(old_root) || !is_hash(new_root)) return invalid_argument("a hash is 32 bytes");
  if (new_size < old_size) {
    return invalid_argument("the new tree (" + std::to_string(new_size) +
                            " entries) is smaller than the old (" + std::to_string(old_size) + ")");
  }
  if (old_size == new_size || old_size == 0) {
    if (!proof.empty()) return invalid_argument("the consistency proof has hashes left over");
    if (old_size == new_size && !constant_time_equal(old_root, new_root)) {
      return invalid_argument("two trees of the same size with different roots");
    }
    if (old_size == 0 && !constant_time_equal(old_root, merkle_empty_root())) {
      return invalid_argument("the old root is not the empty tree's");
    }
    return ok_status();
  }
  if (proof.empty()) return invalid_argument("the consistency proof is empty");
  for (const std::string& p : proof) {
    if (!is_hash(p)) return invalid_argument("a proof hash is 32 bytes");
  }
  // When the old tree is a complete subtree its root is the proof's implicit first hash.
  std::vector<std::string_view> path;
  path.reserve(proof.size() + 1);
  if (std::has_single_bit(old_size)) path.push_back(old_root);
  for (const std::string& p : proof) path.push_back(p);

  uint64_t fn = old_size - 1;
  uint64_t sn = new_size - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  std::string fr(path[0]);
  std::string sr(path[0]);
  for (size_t i = 1; i < path.size(); ++i) {
    if (sn == 0) return invalid_argument("the consistency proof has hashes left over");
    if ((fn & 1) != 0 || fn == sn) {
      fr = merkle_node_hash(path[i], fr);
      sr = merkle_node_hash(path[i], sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = merkle_node_hash(sr, path[i]);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return invalid_argument("the consistency proof is too short");
  if (!constant_time_equal(fr, old_root)) {
    return invalid_argument("the consistency proof does not lead to the old root");
  }
  if (!constant_time_equal(sr, new_root)) {
    return invalid_argument("the consistency proof does not lead to the new root");
  }
  return ok_status();
}

}  // namespace drover::security
