// Views and layout (reshape, permute, slicing, joining, padding, channelsLast): values and
// gradients against PyTorch, and storage sharing where PyTorch shares it.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as bn from "../../src";
import { checkNoLeaks } from "../helpers";
import { rnd, type TorchCase, torchCaseTests, vals } from "../peers/torch-cases";

checkNoLeaks();

const x = rnd([2, 3, 4], 41, { grad: true });
const img = rnd([2, 3, 5, 5], 42, { grad: true });
const idx = vals([2, 0, 2], [3], "int64");

const cases: TorchCase[] = [
  {
    name: "reshape with -1 and view",
    inputs: { x },
    torch: "(x.reshape(6, -1), x.view(-1))",
    ours: (t) => [t.x.reshape([6, -1]), t.x.view([-1])],
  },
  {
    name: "permute [2,0,1] and transpose 0,2",
    inputs: { x },
    torch: "(x.permute(2, 0, 1), x.transpose(0, 2))",
    ours: (t) => [t.x.permute([2, 0, 1]), t.x.transpose(0, 2)],
  },
  {
    name: "slice with step and negative indices, narrow, select",
    inputs: { x },
    torch: "(x[:, 1:, ::2], x[..., -3:-1], x.narrow(2, 1, 2), x.select(1, -1))",
    ours: (t) => [
      t.x.slice(1, 1).slice(2, 0, undefined, 2),
      t.x.slice(2, -3, -1),
      t.x.narrow(2, 1, 2),
      t.x.select(1, -1),
    ],
  },
  {
    name: "indexSelect with repeated indices accumulates the gradient",
    inputs: { x, idx },
    torch: "x.index_select(2, idx)",
    ours: (t) => bn.indexSelect(t.x, 2, t.idx),
  },
  {
    name: "gather along dim 1",
    inputs: { x, g: vals([0, 2, 1, 1, 0, 0, 2, 2], [2, 1, 4], "int64") },
    torch: "x.gather(1, g)",
    ours: (t) => bn.gather(t.x, 1, t.g),
  },
  {
    name: "cat along dims 0 and -1 and stack along a new dim 1",
    inputs: { x, y: rnd([2, 3, 4], 43, { grad: true }) },
    torch: "(torch.cat([x, y], 0), torch.cat([x, y], -1), torch.stack([x, y], 1))",
    ours: (t) => [bn.cat([t.x, t.y]), bn.cat([t.x, t.y], -1), bn.stack([t.x, t.y], 1)],
  },
  { name: "flip over two dims", inputs: { x }, torch: "x.flip([0, 2])", ours: (t) => t.x.flip([0, 2]) },
  {
    name: "squeeze, unsqueeze, expand and flatten",
    inputs: { s: rnd([3, 1, 4], 44, { grad: true }) },
    torch: "(s.squeeze(), s.squeeze(1), s.unsqueeze(0), s.expand(3, 5, 4), s.flatten(), s.flatten(1))",
    ours: (t) => [
      t.s.squeeze(),
      t.s.squeeze(1),
      t.s.unsqueeze(0),
      t.s.expand([3, 5, 4]),
      t.s.flatten(),
      t.s.flatten(1),
    ],
  },
  {
    name: "pad constant, reflect and replicate like F.pad",
    inputs: { img },
    torch:
      "(F.pad(img, (1, 2)), F.pad(img, (1, 1, 2, 0), value=-3.0), F.pad(img, (2, 1, 1, 2), mode='reflect'), F.pad(img, (1, 1, 1, 1), mode='replicate'))",
    ours: (t) => [
      bn.pad(t.img, [1, 2]),
      bn.pad(t.img, [1, 1, 2, 0], "constant", -3),
      bn.pad(t.img, [2, 1, 1, 2], "reflect"),
      bn.pad(t.img, [1, 1, 1, 1], "replicate"),
    ],
  },
  {
    name: "to() converts dtypes like PyTorch (float to int truncates toward zero)",
    inputs: { v: vals([-2.7, -0.5, 0.5, 2.7, 300], [5]) },
    torch:
      "(v.to(torch.int64), v.to(torch.int32), v.to(torch.float64), v.to(torch.bool), v.to(torch.bfloat16), v.to(torch.float16))",
    ours: (t) => [
      bn.to(t.v, "int64"),
      bn.to(t.v, "int32"),
      bn.to(t.v, "float64"),
      bn.to(t.v, "bool"),
      bn.to(t.v, "bfloat16"),
      bn.to(t.v, { dtype: "float16" }),
    ],
  },
  {
    name: "to(float64) keeps the gradient path",
    inputs: { x },
    torch: "x.to(torch.float64) * 2",
    ours: (t) => bn.to(t.x, "float64").mul(2),
  },
  {
    name: "oneHot of int64 labels",
    inputs: { l: vals([0, 3, 1], [3], "int64") },
    torch: "F.one_hot(l, 4)",
    ours: (t) => bn.oneHot(t.l, 4),
  },
  {
    name: "channelsLast copy keeps values and feeds conv2d like PyTorch",
    inputs: { img, w: rnd([4, 3, 3, 3], 45, { grad: true }) },
    torch: "F.conv2d(img.contiguous(memory_format=torch.channels_last), w, padding=1)",
    ours: (t) => bn.conv2d(t.img.contiguous("channelsLast"), t.w, undefined, { padding: 1 }),
  },
];

torchCaseTests(test, cases);

test("channelsLast: isContiguous reports the layout; values are unchanged", () => {
  bn.scope(() => {
    const a = bn.randn([2, 3, 4, 5]);
    const cl = bn.contiguous(a, "channelsLast");
    assert.equal(bn.isContiguous(a), true);
    assert.equal(bn.isContiguous(a, "channelsLast"), false);
    assert.equal(bn.isContiguous(cl, "channelsLast"), true);
    assert.equal(bn.isContiguous(cl), false);
    assert.deepEqual(cl.shape, [2, 3, 4, 5]);
    assert.equal(bn.maxAbsDiff(a, cl), 0);
    assert.deepEqual(
      Array.from(cl.toFloat32Array()),
      Array.from(a.toFloat32Array()),
      "toArray is row-major whatever the layout",
    );
    assert.throws(() => bn.contiguous(bn.zeros([3, 4]), "channelsLast"), /channelsLast needs a 4-d tensor/);
    return undefined;
  });
});

test("views share storage: an in-place change to the base shows in the view", () => {
  bn.scope(() => {
    const a = bn.zeros([2, 3]);
    const v = a.transpose(0, 1);
    const r = a.view([6]);
    bn.fillInPlace(a, 7);
    assert.deepEqual(v.toArray(), [7, 7, 7, 7, 7, 7]);
    assert.deepEqual(r.toArray(), [7, 7, 7, 7, 7, 7]);
    assert.throws(
      () => v.view([6]),
      (e: unknown) => e instanceof bn.NativeOpError && /reshape/.test(e.message),
    );
    return undefined;
  });
});

test("shape arguments are checked before reaching libtorch", () => {
  bn.scope(() => {
    const a = bn.zeros([2, 3]);
    assert.throws(() => a.reshape([-1, -1]), /at most one -1.*Received: shape=\[-1, -1\]/);
    assert.throws(() => a.permute([0]), /dims must list each of the 2 dimensions once/);
    assert.throws(() => a.slice(0, 0, 2, 0), /step must be a positive integer/);
    assert.throws(() => bn.cat([]), /non-empty array of tensors/);
    assert.throws(() => bn.pad(a, [1]), /pairs/);
    assert.throws(() => bn.pad(a, [1, 1], "wrap" as bn.PadMode), /mode must be/);
    assert.throws(() => bn.oneHot(bn.tensor(new BigInt64Array([1n])), 0), /numClasses must be a positive integer/);
    return undefined;
  });
});
