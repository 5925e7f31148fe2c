# Plain node-gyp build of the same CPU sources as CMakeLists.txt (cmake-js is the default).
# Keep the source lists in step with cpp/: test/build-files.test.ts checks it.
# The x86 kernels (*_avx2.cpp, *_avx512.cpp) are a separate static library built only for
# x64/ia32; elsewhere SDLLM_NO_AVX2_SOURCES selects the portable kernels alone
# (cpp/ops/kernels_portable.cpp stands in for the x86 entry points).
{
  "targets": [
    {
      "target_name": "streaming_dllm",
      "sources": [
        "cpp/config.cpp",
        "cpp/cpu_budget.cpp",
        "cpp/cpu_features.cpp",
        "cpp/cpu_forward_ops.cpp",
        "cpp/cuda_backend.cpp",
        "cpp/cuda_probe.cpp",
        "cpp/fma_peak.cpp",
        "cpp/forward.cpp",
        "cpp/huge_pages.cpp",
        "cpp/json.cpp",
        "cpp/kv_memory.cpp",
        "cpp/loader.cpp",
        "cpp/op_times.cpp",
        "cpp/repack.cpp",
        "cpp/ops/attention.cpp",
        "cpp/ops/confidence.cpp",
        "cpp/ops/elementwise.cpp",
        "cpp/ops/embedding.cpp",
        "cpp/ops/gemm.cpp",
        "cpp/ops/gemm_q8.cpp",
        "cpp/ops/kernels_portable.cpp",
        "cpp/ops/project.cpp",
        "cpp/ops/rmsnorm.cpp",
        "cpp/ops/rope.cpp",
        "cpp/safetensors.cpp",
        "cpp/session.cpp",
        "cpp/threadpool.cpp",
        "cpp/napi/addon.cpp",
        "cpp/napi/request.cpp"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "cpp"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS"
      ],
      "cflags_cc": [
        "-std=c++17",
        "-O3"
      ],
      "cflags_cc!": [
        "-fno-exceptions",
        "-fno-rtti"
      ],
      "libraries": [
        "-lpthread",
        "-ldl"
      ],
      "msvs_settings": {
        "VCCLCompilerTool": {
          "AdditionalOptions": [
            "/std:c++17"
          ],
          "ExceptionHandling": 1
        }
      },
      "xcode_settings": {
        "OTHER_CPLUSPLUSFLAGS": [
          "-std=c++17",
          "-O3"
        ],
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES"
      },
      "conditions": [
        [
          "target_arch=='x64' or target_arch=='ia32'",
          {
            "dependencies": [
              "sdllm_avx2"
            ]
          },
          {
            "defines": [
              "SDLLM_NO_AVX2_SOURCES=1"
            ]
          }
        ]
      ]
    }
  ],
  "conditions": [
    [
      "target_arch=='x64' or target_arch=='ia32'",
      {
        "targets": [
          {
            "target_name": "sdllm_avx2",
            "type": "static_library",
            "sources": [
              "cpp/ops/attention_avx2.cpp",
              "cpp/ops/attention_avx512.cpp",
              "cpp/ops/confidence_avx2.cpp",
              "cpp/ops/confidence_avx512.cpp",
              "cpp/ops/elementwise_avx2.cpp",
              "cpp/ops/elementwise_avx512.cpp",
              "cpp/ops/gemm_avx2.cpp",
              "cpp/ops/gemm_avx512.cpp",
              "cpp/ops/gemm_q8_avx2.cpp",
              "cpp/ops/gemm_q8_avx512.cpp",
              "cpp/ops/gemm_q8_vnni_avx2.cpp",
              "cpp/ops/rope_avx512.cpp"
            ],
            "include_dirs": [
              "cpp"
            ],
            "cflags_cc": [
              "-std=c++17",
              "-O3",
              "-mavx2",
              "-mfma",
              "-mf16c",
              "-fPIC"
            ],
            "cflags_cc!": [
              "-fno-exceptions"
            ],
            "msvs_settings": {
              "VCCLCompilerTool": {
                "AdditionalOptions": [
                  "/std:c++17",
                  "/arch:AVX2"
                ],
                "ExceptionHandling": 1
              }
            },
            "xcode_settings": {
              "OTHER_CPLUSPLUSFLAGS": [
                "-std=c++17",
                "-O3",
                "-mavx2",
                "-mfma",
                "-mf16c"
              ],
              "GCC_ENABLE_CPP_EXCEPTIONS": "YES"
            }
          }
        ]
      }
    ]
  ]
}
