#include "security/merkle.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "security/crypto.h"

namespace drover::security {
namespace {

std::string unhex(std::string_view h) { return from_hex(h).value(); }

// The leaves and tree heads Certificate Transparency publishes for RFC 6962 trees of 0 to 8
// entries: an implementation no other agrees with proves nothing to anyone.
const std::vector<std::string> kCtEntries = {"",
                                             "00",
                                             "10",
                                             "2021",
                                             "3031",
                                             "40414243",
                                             "5051525354555657",
                                             "606162636465666768696a6b6c6d6e6f"};
const std::vector<std::string> kCtRoots = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};

// The tree head by the RFC's recursive definition, from the leaves: the reference the
// incremental tree is held to.
std::string reference_root(const std::vector<std::string>& leaves, size_t start, size_t n) {
  if (n == 0) return sha256("");
  if (n == 1) return leaves[start];
  size_t k = 1;
  while (k * 2 < n) k *= 2;
  return merkle_node_hash(reference_root(leaves, start, k),
                          reference_root(leaves, start + k, n - k));
}

struct Tree {
  std::vector<std::string> leaves;
  MerkleTree tree;
  explicit Tree(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      leaves.push_back(merkle_leaf_hash("entry " + std::to_string(i)));
      EXPECT_TRUE(tree.append(leaves.back()).ok());
    }
  }
};

TEST(Merkle, TreeHeadsAreThoseCertificateTransparencyPublishes) {
  MerkleTree tree;
  EXPECT_EQ(to_hex(tree.root()), kCtRoots[0]);
  for (size_t n = 1; n <= kCtEntries.size(); ++n) {
    ASSERT_TRUE(tree.append(merkle_leaf_hash(unhex(kCtEntries[n - 1]))).ok());
    EXPECT_EQ(to_hex(tree.root()), kCtRoots[n]) << n;
  }
  // And every earlier size stays answerable from the grown tree.
  for (size_t n = 0; n <= kCtEntries.size(); ++n) EXPECT_EQ(to_hex(*tree.root(n)), kCtRoots[n]);

  auto proof = tree.inclusion_proof(0, 8);
  ASSERT_TRUE(proof.ok());
  ASSERT_EQ(proof->size(), 3u);
  EXPECT_EQ(to_hex((*proof)[0]),
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7");
  EXPECT_EQ(to_hex((*proof)[1]),
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e");
  EXPECT_EQ(to_hex((*proof)[2]),
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4");
}

TEST(Merkle, EveryRootOfEverySizeIsTheRecursiveDefinitions) {
  Tree t(70);
  for (size_t n = 0; n <= 70; ++n) {
    EXPECT_EQ(*t.tree.root(n), reference_root(t.leaves, 0, n)) << n;
  }
  EXPECT_FALSE(t.tree.root(71).ok());
  EXPECT_EQ(*t.tree.leaf(69), t.leaves[69]);
  EXPECT_EQ(t.tree.leaf(70).error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(t.tree.append("short").ok());
  EXPECT_EQ(t.tree.size(), 70u);
}

TEST(Merkle, ATruncatedTreeIsTheTreeOfThatSizeAndGrowsAgain) {
  Tree t(37);
  for (uint64_t n : {37u, 36u, 32u, 31u, 17u, 1u, 0u}) {
    MerkleTree copy = t.tree;
    copy.truncate(n);
    EXPECT_EQ(copy.size(), n);
    EXPECT_EQ(copy.root(), reference_root(t.leaves, 0, n)) << n;
    for (uint64_t i = n; i < 37; ++i) ASSERT_TRUE(copy.append(t.leaves[i]).ok());
    EXPECT_EQ(copy.root(), t.tree.root()) << n;
  }
}

TEST(Merkle, EveryInclusionProofVerifiesAndNoOtherLeafOrRootDoes) {
  Tree t(40);
  for (uint64_t size = 1; size <= 40; ++size) {
    const std::string root = *t.tree.root(size);
    for (uint64_t i = 0; i < size; ++i) {
      auto proof = t.tree.inclusion_proof(i, size);
      ASSERT_TRUE(proof.ok());
      ASSERT_TRUE(verify_inclusion(i, size, t.leaves[i], *proof, root).ok()) << i << "/" << size;
      // The same proof for a neighbour's leaf, or at a neighbouring index, fails.
      const uint64_t other = (i + 1) % size;
      if (other != i) {
        EXPECT_FALSE(verify_inclusion(i, size, t.leaves[other], *proof, root).ok());
        EXPECT_FALSE(verify_inclusion(other, size, t.leaves[i], *proof, root).ok());
      }
    }
  }
}

TEST(Merkle, ATamperedInclusionProofIsRefused) {
  Tree t(13);
  const std::string root = t.tree.root();
  auto proof = *t.tree.inclusion_proof(5, 13);
  ASSERT_TRUE(verify_inclusion(5, 13, t.leaves[5], proof, root).ok());
  for (size_t i = 0; i < proof.size(); ++i) {
    auto bad = proof;
    bad[i][7] = static_cast<char>(bad[i][7] ^ 1);
    EXPECT_FALSE(verify_inclusion(5, 13, t.leaves[5], bad, root).ok()) << i;
  }
  auto longer = proof;
  longer.push_back(root);  // a hash left over
  EXPECT_FALSE(verify_inclusion(5, 13, t.leaves[5], longer, root).ok());
  auto shorter = proof;
  shorter.pop_back();
  EXPECT_FALSE(verify_inclusion(5, 13, t.leaves[5], shorter, root).ok());
  auto ragged = proof;
  ragged[0].resize(31);
  EXPECT_FALSE(verify_inclusion(5, 13, t.leaves[5], ragged, root).ok());
  EXPECT_FALSE(verify_inclusion(13, 13, t.leaves[5], proof, root).ok());  // index outside
  EXPECT_FALSE(verify_inclusion(5, 6, t.leaves[5], proof, root).ok());    // another shape
  EXPECT_FALSE(verify_inclusion(5, 13, t.leaves[5], proof, *t.tree.root(12)).ok());
  EXPECT_FALSE(t.tree.inclusion_proof(13, 13).ok());
  EXPECT_FALSE(t.tree.inclusion_proof(0, 14).ok());
}

TEST(Merkle, EveryConsistencyProofVerifiesBetweenEveryPairOfSizes) {
  Tree t(40);
  for (uint64_t m = 0; m <= 40; ++m) {
    for (uint64_t n = m; n <= 40; ++n) {
      auto proof = t.tree.consistency_proof(m, n);
      ASSERT_TRUE(proof.ok());
      ASSERT_TRUE(verify_consistency(m, n, *t.tree.root(m), *t.tree.root(n), *proof).ok())
          << m << " -> " << n;
      if (m > 0 && m < n) {
        // Against another tree's old root, or claimed for another old size, it fails.
        EXPECT_FALSE(verify_consistency(m, n, *t.tree.root(m - 1), *t.tree.root(n), *proof).ok());
        EXPECT_FALSE(verify_consistency(m, n, *t.tree.root(m), *t.tree.root(n - 1), *proof).ok());
      }
    }
  }
}

TEST(Merkle, AConsistencyProofThatIsNoPrefixOrHasHashesLeftOverIsRefused) {
  Tree t(21);
  // Another history that shares the first 8 entries and then differs.
  MerkleTree fork;
  for (size_t i = 0; i < 21; ++i) {
    ASSERT_TRUE(
        fork.append(i < 8 ? t.leaves[i] : merkle_leaf_hash("other " + std::to_string(i))).ok());
  }
  const std::string old_root = *t.tree.root(11);
  auto proof = *t.tree.consistency_proof(11, 21);
  ASSERT_TRUE(verify_consistency(11, 21, old_root, t.tree.root(), proof).ok());
  // The forked tree of 21 does not extend the tree of 11, whatever proof it offers.
  EXPECT_FALSE(verify_consistency(11, 21, old_root, fork.root(), proof).ok());
  EXPECT_FALSE(
      verify_consistency(11, 21, old_root, fork.root(), *fork.consistency_proof(11, 21)).ok());
  // But it does extend the common prefix of 8.
  EXPECT_TRUE(
      verify_consistency(8, 21, *t.tree.root(8), fork.root(), *fork.consistency_proof(8, 21)).ok());

  auto longer = proof;
  longer.push_back(proof.back());
  EXPECT_FALSE(verify_consistency(11, 21, old_root, t.tree.root(), longer).ok());
  auto shorter = proof;
  shorter.pop_back();
  EXPECT_FALSE(verify_consistency(11, 21, old_root, t.tree.root(), shorter).ok());
  for (size_t i = 0; i < proof.size(); ++i) {
    auto bad = proof;
    bad[i][0] = static_cast<char>(bad[i][0] ^ 0x80);
    EXPECT_FALSE(verify_consistency(11, 21, old_root, t.tree.root(), bad).ok()) << i;
  }
  // A smaller tree is never a consistent extension, nor is a proof for equal sizes with
  // hashes in it, nor two different roots of one size.
  EXPECT_FALSE(verify_consistency(21, 11, t.tree.root(), old_root, proof).ok());
  EXPECT_FALSE(t.tree.consistency_proof(21, 11).ok());
  EXPECT_FALSE(verify_consistency(11, 11, old_root, old_root, proof).ok());
  EXPECT_TRUE(verify_consistency(11, 11, old_root, old_root, {}).ok());
  EXPECT_FALSE(verify_consistency(11, 11, old_root, *t.tree.root(12), {}).ok());
  EXPECT_FALSE(verify_consistency(11, 21, old_root, t.tree.root(), {}).ok());
  EXPECT_FALSE(verify_consistency(0, 21, old_root, t.tree.root(), {}).ok());
  EXPECT_TRUE(verify_consistency(0, 21, merkle_empty_root(), t.tree.root(), {}).ok());
}

}  // namespace
}  // namespace drover::security
