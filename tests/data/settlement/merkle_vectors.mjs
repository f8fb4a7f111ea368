// Generates tests/data/settlement/merkle_vectors.json with OpenZeppelin's StandardMerkleTree.
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
const cases = {
  one: [["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "975000"]],
  two: [
    ["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "975000"],
    ["0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", "1"],
  ],
  five: [
    ["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "975000"],
    ["0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", "1"],
    ["0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", "123456789012345678901234567890"],
    ["0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb", "115792089237316195423570985008687907853269984665640564039457584007913129639935"],
    ["0x52908400098527886E0F7030069857D2E4169EE7", "500000"],
  ],
};
const out = {};
for (const [name, values] of Object.entries(cases)) {
  const tree = StandardMerkleTree.of(values, ["address", "uint256"]);
  out[name] = {
    root: tree.root,
    leaves: values.map((v, i) => ({ address: v[0], amount: v[1], proof: tree.getProof(i) })),
  };
}
console.log(JSON.stringify(out, null, 2));
