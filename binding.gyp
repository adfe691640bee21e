{
  # The same sources as CMakeLists.txt. Flags: -O3 -fno-math-errno lets GCC vectorize sqrt;
  # -ffp-contract=off keeps every multiply-add exactly where the kernels ask for one (so the
  # FMA kernels reproduce ATen bit for bit and the baseline ones round every operation);
  # never -ffast-math (it breaks NaN/Inf handling). No -march: the baseline stays x86-64 and
  # wider kernels are picked at run time.
  "variables": {
    "optim_blas%": "<!(node scripts/detect-blas.js)"
  },
  "targets": [
    {
      "target_name": "optim",
      "sources": [
        "native/bindings/addon.cc",
        "native/kernels/dispatch.cc",
        "native/kernels/isa_baseline.cc",
        "native/kernels/isa_avx2.cc",
        "native/kernels/isa_avx512.cc",
        "native/bindings/linalg.cc",
        "native/kernels/gemm.cc",
        "native/kernels/gram.cc",
        "native/kernels/cholesky.cc",
        "native/kernels/eigh.cc",
        "native/kernels/nonfinite.cc",
        "native/kernels/threads.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "OPTIM_VERSION=\"<!(node -p \"require('./package.json').version\")\""
      ],
            "cflags_cc!": ["-std=gnu++17", "-std=gnu++20"],
      "cflags": ["-O3", "-fno-math-errno", "-ffp-contract=off", "-fvisibility=hidden"],
      "cflags_cc": ["-std=c++17"],
      "xcode_settings": {
        "OTHER_CFLAGS": ["-O3", "-fno-math-errno", "-ffp-contract=off"],
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17"
      },
      "conditions": [
        ["optim_blas=='openblas'", {
          "defines": ["OPTIM_HAVE_OPENBLAS"],
          "libraries": ["-lopenblas", "-llapacke"]
        }]
      ]
    }
  ]
}
