{
  "targets": [
    {
      "target_name": "budgetnet",
      "sources": [
        "native/addon.cc",
        "native/allocator.cc",
        "native/tensor.cc",
        "native/ops_math.cc",
        "native/ops_nn.cc",
        "native/augment.cc",
        "native/autocast.cc",
        "native/profiler.cc",
        "native/plan.cc",
        "native/plan_int8.cc",
        "native/dist.cc",
        "native/fused_bn.cc",
        "native/conv_train.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/find-libtorch.js includes)"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "<!@(node scripts/find-libtorch.js defines)"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-fopenmp", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
      "ldflags": ["-fopenmp", "<!@(node scripts/find-libtorch.js ldflags)"],
      "libraries": ["<!@(node scripts/find-libtorch.js libs)"]
    }
  ]
}
