#include "request.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace sdllm {

std::vector<int32_t> int32_vector(const Napi::Value& v, const char* name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(v.Env(), std::string("Expected an Int32Array for ") + name);
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  return std::vector<int32_t>(a.Data(), a.Data() + a.ElementLength());
}

// o[key] as a number; `name` is what an error calls it (default: the key).
double number_field(const Napi::Object& o, const char* key, const char* name) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("Expected a number for ") + (name ? name : key));
  return v.As<Napi::Number>().DoubleValue();
}

// A number that must be an integer in [lo, hi]. Checked before any cast: converting a NaN
// or out-of-range double to an integer type is undefined behaviour in C++.
int64_t integer_field(const Napi::Object& o, const char* key, double lo, double hi, const char* name) {
  if (!name) name = key;
  const double v = number_field(o, key, name);
  if (!(v >= lo && v <= hi) || std::floor(v) != v)
    throw Napi::RangeError::New(o.Env(), std::string(name) + " must be an integer in [" + std::to_string(static_cast<int64_t>(lo)) +
                                             ", " + std::to_string(static_cast<int64_t>(hi)) + "]");
  return static_cast<int64_t>(v);
}

// A finite number >= 0 (a temperature).
float temperature_field(const Napi::Object& o, const char* name) {
  const double v = number_field(o, name);
  if (!(v >= 0 && v <= 1e30)) throw Napi::RangeError::New(o.Env(), std::string(name) + " must be a finite number >= 0");
  return static_cast<float>(v);
}

// Copies a JS forward request (types/native.d.ts NativeForwardRequest) on the JS thread.
ForwardRequest parse_request(Napi::Env env, const Napi::Value& value) {
  if (!value.IsObject()) throw Napi::TypeError::New(env, "Expected a request object");
  Napi::Object o = value.As<Napi::Object>();
  ForwardRequest req;
  req.tokens = int32_vector(o.Get("tokens"), "tokens");
  req.positions = int32_vector(o.Get("positions"), "positions");
  req.predict_rows = int32_vector(o.Get("predictRows"), "predictRows");
  // Slot and row counts: the session checks them against its capacity; here only that
  // they are integers an int32 holds.
  constexpr double kMaxIndex = 2147483647.0, kMaxSafe = 9007199254740991.0;  // 2^31 - 1, 2^53 - 1
  req.cache_attend = integer_field(o, "cacheAttend", 0, kMaxIndex);
  Napi::Value write = o.Get("cacheWrite");
  if (write.IsObject()) {
    req.cache_write_start = integer_field(write.As<Napi::Object>(), "start", 0, kMaxIndex, "cacheWrite.start");
    req.cache_write_rows = integer_field(write.As<Napi::Object>(), "rows", 0, kMaxIndex, "cacheWrite.rows");
  }
  req.attend_self = o.Get("attendSelf").ToBoolean().Value();
  req.confidence = static_cast<ConfidenceKind>(integer_field(o, "confidence", 0, 3));
  req.temperature = temperature_field(o, "temperature");
  // Optional (default 1): confidences from softmax(logits / confidenceTemperature).
  if (!o.Get("confidenceTemperature").IsUndefined()) {
    req.confidence_temperature = temperature_field(o, "confidenceTemperature");
    if (!(req.confidence_temperature > 0)) throw Napi::RangeError::New(env, "confidenceTemperature must be > 0");
  }
  req.seed = static_cast<uint64_t>(integer_field(o, "seed", 0, kMaxSafe));
  req.noise_counter = static_cast<uint64_t>(integer_field(o, "noiseCounter", 0, kMaxSafe));
  req.return_logits = o.Get("returnLogits").ToBoolean().Value();
  return req;
}

Napi::Object result_object(Napi::Env env, const ForwardResult& r) {
  Napi::Object o = Napi::Object::New(env);
  const size_t np = r.token_ids.size();
  Napi::Int32Array ids = Napi::Int32Array::New(env, np);
  Napi::Float32Array conf = Napi::Float32Array::New(env, np);
  std::copy(r.token_ids.begin(), r.token_ids.end(), ids.Data());
  std::copy(r.confidences.begin(), r.confidences.end(), conf.Data());
  o.Set("tokenIds", ids);
  o.Set("confidences", conf);
  if (!r.logits.empty()) {
    Napi::Float32Array lg = Napi::Float32Array::New(env, r.logits.size());
    std::copy(r.logits.begin(), r.logits.end(), lg.Data());
    o.Set("logits", lg);
  }
  return o;
}

}  // namespace sdllm
