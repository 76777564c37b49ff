// Fuzzes what the audit log reads from its store and what `drover audit` reads from a server:
// entries, signed checkpoints, and inclusion and consistency proofs. The first byte picks
// which. Nothing crashes or throws; an entry that parses is in the one form it is written in;
// no checkpoint verifies without the key's signature; and a proof accepted against a true
// root is the true proof (a Merkle proof is unique short of a SHA-256 collision), so no
// tampered, truncated or padded proof and no smaller tree is ever accepted.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fleet/audit_log.h"
#include "security/crypto.h"
#include "security/merkle.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

uint64_t take_u64(std::string_view& in) {
  uint64_t v = 0;
  const size_t n = std::min<size_t>(8, in.size());
  std::memcpy(&v, in.data(), n);
  in.remove_prefix(n);
  return v;
}

std::vector<std::string> take_hashes(std::string_view in) {
  std::vector<std::string> out;
  while (!in.empty() && out.size() < 80) {
    const size_t n = std::min<size_t>(32, in.size());
    out.emplace_back(in.substr(0, n));
    in.remove_prefix(n);
  }
  return out;
}

// The true proof changed as the input says, three bytes an edit: a bit flipped, a hash
// dropped, one repeated, two swapped, or the rest of the input taken as hashes.
std::vector<std::string> mutate(std::vector<std::string> proof, std::string_view in) {
  while (in.size() >= 3) {
    const auto op = static_cast<uint8_t>(in[0]);
    const auto a = static_cast<uint8_t>(in[1]);
    const auto b = static_cast<uint8_t>(in[2]);
    in.remove_prefix(3);
    const size_t i = proof.empty() ? 0 : a % proof.size();
    switch (op % 5) {
      case 0:
        if (!proof.empty())
          proof[i][b % 32] = static_cast<char>(proof[i][b % 32] ^ (1 << (op % 8)));
        break;
      case 1:
        if (!proof.empty()) proof.erase(proof.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      case 2:
        if (proof.size() < 80) proof.push_back(proof.empty() ? std::string(32, 'x') : proof[i]);
        break;
      case 3:
        if (!proof.empty()) std::swap(proof[i], proof[b % proof.size()]);
        break;
      default: {
        for (std::string& h : take_hashes(in)) proof.push_back(std::move(h));
        return proof;
      }
    }
  }
  return proof;
}

const drover::security::MerkleTree& tree() {
  static const auto* t = [] {
    auto* made = new drover::security::MerkleTree;
    for (int i = 0; i < 70; ++i) {
      (void)made->append(drover::security::merkle_leaf_hash("entry " + std::to_string(i)));
    }
    return made;
  }();
  return *t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace sec = drover::security;
  if (size == 0) return 0;
  const uint8_t mode = data[0] % 4;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (mode == 0) {
    auto e = drover::parse_audit_entry(7, in);
    if (e.ok()) {
      check(e->bytes == in);
      check(e->index == 7);
      check(e->leaf_hash == sec::merkle_leaf_hash(in));
    }
  } else if (mode == 1) {
    // No key signed anything here: whatever the bytes, nothing verifies.
    static const std::string key = sec::SigningKey::generate().value().public_key();
    check(!drover::parse_audit_checkpoint(in, key).ok());
  } else if (mode == 2) {
    const uint64_t index = take_u64(in) % 80;
    const uint64_t n = take_u64(in) % 80;
    const auto& t = tree();
    if (n == 0 || index >= n) {
      // An index outside the tree is never included, whatever the proof.
      check(!sec::verify_inclusion(index, n, *t.leaf(0), take_hashes(in), t.root()).ok());
      return 0;
    }
    if (n > t.size()) return 0;
    const std::vector<std::string> truth = *t.inclusion_proof(index, n);
    const std::vector<std::string> proof = mutate(truth, in);
    if (sec::verify_inclusion(index, n, *t.leaf(index), proof, *t.root(n)).ok()) {
      check(proof == truth);
    }
  } else {
    const uint64_t m = take_u64(in) % 80;
    const uint64_t n = take_u64(in) % 80;
    const auto& t = tree();
    if (m > t.size() || n > t.size()) return 0;
    const std::vector<std::string> truth =
        m <= n ? *t.consistency_proof(m, n) : std::vector<std::string>{};
    const std::vector<std::string> proof = mutate(truth, in);
    if (sec::verify_consistency(m, n, *t.root(m), *t.root(n), proof).ok()) {
      check(m <= n);
      check(proof == truth);
    }
  }
  return 0;
}
