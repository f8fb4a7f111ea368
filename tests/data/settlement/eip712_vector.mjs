// Generates tests/data/settlement/eip712_vector.json with viem's hashTypedData.
import { hashTypedData, hashDomain, hashStruct } from "viem";
const domain = {
  name: "basis settlement",
  version: "1",
  chainId: 8453,
  verifyingContract: "0x8004BAa17C55a88189AE136b182e5fdA19dE9b63",
};
const types = {
  SettlementBatch: [
    { name: "batchId", type: "uint256" },
    { name: "root", type: "bytes32" },
    { name: "total", type: "uint256" },
    { name: "token", type: "address" },
    { name: "periodStart", type: "uint64" },
    { name: "periodEnd", type: "uint64" },
  ],
};
const message = {
  batchId: 7n,
  root: "0xd62d5d2e26e86198ac3526de56ca8aa34653950eb10c280ae8cd045de9f03b72",
  total: 975001n,
  token: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
  periodStart: 1796200000n,
  periodEnd: 1796286400n,
};
const digest = hashTypedData({ domain, types, primaryType: "SettlementBatch", message });
const domainSeparator = hashDomain({ domain, types: { EIP712Domain: [
  { name: "name", type: "string" }, { name: "version", type: "string" },
  { name: "chainId", type: "uint256" }, { name: "verifyingContract", type: "address" } ] } });
const structHash = hashStruct({ data: message, primaryType: "SettlementBatch", types });
console.log(JSON.stringify({ domain, message: Object.fromEntries(Object.entries(message).map(([k, v]) => [k, v.toString()])), domainSeparator, structHash, digest }, null, 2));
