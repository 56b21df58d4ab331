{
  "targets": [
    {
      "target_name": "lorasft_native",
      "sources": [
        "kernels/addon.cc",
        "kernels/BatchMatMul.cc",
        "kernels/FusedAttention.cc",
        "kernels/WeightedCrossEntropy.cc",
        "kernels/RmsNorm.cc",
        "kernels/Swiglu.cc",
        "kernels/GeluTanhMul.cc",
        "kernels/Rope.cc",
        "kernels/Elementwise.cc",
        "kernels/LoraLinear.cc",
        "kernels/AdamW.cc",
        "kernels/GatherV2.cc",
        "kernels/Dnnl.cc",
        "kernels/MatMulBf16.cc",
        "kernels/LoraLinearBf16.cc",
        "kernels/FusedAttentionBf16.cc",
        "kernels/Avx512.cc",
        "kernels/KeepAwake.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-O3", "-march=x86-64-v2", "-fopenmp", "-std=c++17", "-fexceptions"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-ldl"]
    }
  ]
}
