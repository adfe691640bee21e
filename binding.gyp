{
  # The sources are listed once, in native/sources.txt (CMakeLists.txt reads it too).
  # Flags: -O3 -fno-math-errno lets GCC vectorize sqrt;
  # -ffp-contract=off keeps every multiply-add exactly where the kernels ask for one (so the
  # FMA kernels reproduce ATen bit for bit and the baseline ones round every operation);
  # never -ffast-math (it breaks NaN/Inf handling). No -march: the baseline stays x86-64 and
  # wider kernels are picked at run time.
  "variables": {
    "optim_blas%": "<!(node scripts/detect-blas.js)",
    "optim_gloo%": "<!(node scripts/detect-gloo.js)"
  },
  "targets": [
    {
      "target_name": "optim",
      "sources": ["<!@(node scripts/native-sources.js)"],
      "defines": [
        "NAPI_VERSION=8",
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
        }],
        ["optim_gloo=='gloo'", {
          "defines": ["OPTIM_HAVE_GLOO"],
          "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
          "libraries": ["-lgloo", "-lpthread"]
        }]
      ]
    }
  ]
}
