// The forward request and result across the N-API boundary: a JS NativeForwardRequest
// (types/native.d.ts) copied into a ForwardRequest on the JS thread, every field checked
// before any cast (a NaN or out-of-range double cast to an integer is undefined behaviour
// in C++), and a ForwardResult turned into typed arrays for JS. The workers that run the
// forward never see a JS value (addon.cpp).
#pragma once
#include <napi.h>

#include <cstdint>
#include <vector>

#include "session.h"

namespace sdllm {

// v as an Int32Array's contents; a TypeError naming `name` otherwise.
std::vector<int32_t> int32_vector(const Napi::Value& v, const char* name);
// o[key] as a number; `name` is what an error calls it (default: the key).
double number_field(const Napi::Object& o, const char* key, const char* name = nullptr);
// A number that must be an integer in [lo, hi] (RangeError otherwise).
int64_t integer_field(const Napi::Object& o, const char* key, double lo, double hi, const char* name = nullptr);
// A finite number >= 0 (a temperature).
float temperature_field(const Napi::Object& o, const char* name);
// Copies a JS forward request on the JS thread.
ForwardRequest parse_request(Napi::Env env, const Napi::Value& value);
// { tokenIds, confidences[, logits] } of one sequence's result.
Napi::Object result_object(Napi::Env env, const ForwardResult& r);

}  // namespace sdllm
