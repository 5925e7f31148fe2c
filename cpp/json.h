// A small strict JSON parser for config.json, index files and safetensors headers.
// It is fed untrusted bytes (a safetensors header can be anything), so it bounds
// nesting depth, validates UTF-8 and never reads past the buffer; every error is a
// JsonError whose message gives the byte offset of the defect.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sdllm {

struct JsonError : std::runtime_error {
  size_t offset;
  JsonError(const std::string& what, size_t off) : std::runtime_error(what), offset(off) {}
};

struct JsonValue {
  enum class Type { Null, Bool, Number, String, Array, Object };

  Type type = Type::Null;
  bool boolean = false;
  double number = 0.0;
  // Set when the number is integral and fits int64 exactly (always for integer
  // literals in range, e.g. tensor offsets beyond 2^53 that a double would round).
  bool is_int = false;
  int64_t integer = 0;
  std::string string;
  std::vector<JsonValue> array;
  // Members in document order; the parser rejects duplicate keys.
  std::vector<std::pair<std::string, JsonValue>> object;

  bool is_null() const { return type == Type::Null; }
  bool is_bool() const { return type == Type::Bool; }
  bool is_number() const { return type == Type::Number; }
  bool is_string() const { return type == Type::String; }
  bool is_array() const { return type == Type::Array; }
  bool is_object() const { return type == Type::Object; }

  // The member named key, or nullptr (also when this is not an object).
  const JsonValue* find(std::string_view key) const;
};

// "null", "true", "object", ... for error messages.
const char* json_type_name(JsonValue::Type t);

// Parses one JSON document (surrounding whitespace allowed, nothing else).
// Throws JsonError("JSON error at byte N: <reason>") on any defect.
JsonValue parse_json(std::string_view text, int max_depth = 128);

}  // namespace sdllm
