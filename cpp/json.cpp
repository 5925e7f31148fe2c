// Strict recursive-descent JSON parser (RFC 8259). Recursion is bounded by max_depth,
// so hostile input cannot exhaust the stack; all reads are bounds-checked.
#include "json.h"

#include <charconv>
#include <cmath>
#include <unordered_set>

namespace sdllm {

const JsonValue* JsonValue::find(std::string_view key) const {
  if (type != Type::Object) return nullptr;
  for (const auto& kv : object)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

const char* json_type_name(JsonValue::Type t) {
  switch (t) {
    case JsonValue::Type::Null: return "null";
    case JsonValue::Type::Bool: return "boolean";
    case JsonValue::Type::Number: return "number";
    case JsonValue::Type::String: return "string";
    case JsonValue::Type::Array: return "array";
    default: return "object";
  }
}

namespace {

class Parser {
 public:
  Parser(std::string_view s, int max_depth) : s_(s), max_depth_(max_depth) {}

  JsonValue document() {
    skip_ws();
    JsonValue v = value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected data after the JSON value");
    return v;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
  int max_depth_;

  [[noreturn]] void fail(const std::string& why) const { fail_at(pos_, why); }
  [[noreturn]] void fail_at(size_t at, const std::string& why) const {
    throw JsonError("JSON error at byte " + std::to_string(at) + ": " + why, at);
  }

  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return s_[pos_]; }

  void skip_ws() {
    while (!at_end()) {
      char c = peek();
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  void expect_literal(std::string_view lit) {
    if (s_.substr(pos_, lit.size()) != lit) fail("invalid literal");
    pos_ += lit.size();
  }

  JsonValue value(int depth) {
    if (at_end()) fail("unexpected end of input, expected a value");
    JsonValue v;
    switch (peek()) {
      case '{': object(v, depth + 1); break;
      case '[': array(v, depth + 1); break;
      case '"': v.type = JsonValue::Type::String; v.string = string(); break;
      case 't': expect_literal("true"); v.type = JsonValue::Type::Bool; v.boolean = true; break;
      case 'f': expect_literal("false"); v.type = JsonValue::Type::Bool; break;
      case 'n': expect_literal("null"); break;
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) number(v);
        else fail(std::string("unexpected character '") + printable(peek()) + "'");
    }
    return v;
  }

  static std::string printable(char c) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string(1, c);
    static const char* hex = "0123456789abcdef";
    return std::string("\\x") + hex[u >> 4] + hex[u & 15];
  }

  void object(JsonValue& v, int depth) {
    if (depth > max_depth_) fail("nesting deeper than " + std::to_string(max_depth_));
    v.type = JsonValue::Type::Object;
    ++pos_;  // '{'
    skip_ws();
    if (!at_end() && peek() == '}') { ++pos_; return; }
    // A set beside the ordered member list keeps duplicate detection linear.
    std::unordered_set<std::string> seen;
    for (;;) {
      skip_ws();
      if (at_end()) fail("unexpected end of input in object");
      if (peek() != '"') fail("expected a string key");
      size_t key_at = pos_;
      std::string key = string();
      if (!seen.insert(key).second) fail_at(key_at, "duplicate key \"" + key + "\"");
      skip_ws();
      if (at_end() || peek() != ':') fail("expected ':' after object key");
      ++pos_;
      skip_ws();
      JsonValue member = value(depth);
      v.object.emplace_back(std::move(key), std::move(member));
      skip_ws();
      if (at_end()) fail("unexpected end of input in object");
      if (peek() == ',') { ++pos_; continue; }
      if (peek() == '}') { ++pos_; return; }
      fail("expected ',' or '}' in object");
    }
  }

  void array(JsonValue& v, int depth) {
    if (depth > max_depth_) fail("nesting deeper than " + std::to_string(max_depth_));
    v.type = JsonValue::Type::Array;
    ++pos_;  // '['
    skip_ws();
    if (!at_end() && peek() == ']') { ++pos_; return; }
    for (;;) {
      skip_ws();
      v.array.push_back(value(depth));
      skip_ws();
      if (at_end()) fail("unexpected end of input in array");
      if (peek() == ',') { ++pos_; continue; }
      if (peek() == ']') { ++pos_; return; }
      fail("expected ',' or ']' in array");
    }
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  uint32_t hex4() {
    if (s_.size() - pos_ < 4) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_ + i];
      uint32_t d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else fail_at(pos_ + i, "invalid hex digit in \\u escape");
      v = (v << 4) | d;
    }
    pos_ += 4;
    return v;
  }

  // Copies one raw UTF-8 sequence, rejecting overlongs, surrogates and bytes past U+10FFFF.
  void utf8_sequence(std::string& out) {
    const unsigned char c = static_cast<unsigned char>(peek());
    int len;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; min = 0x10000; }
    else fail("invalid UTF-8 byte");
    if (s_.size() - pos_ < static_cast<size_t>(len)) fail("truncated UTF-8 sequence");
    for (int i = 1; i < len; ++i) {
      const unsigned char cc = static_cast<unsigned char>(s_[pos_ + i]);
      if ((cc & 0xc0) != 0x80) fail("invalid UTF-8 sequence");
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) fail("invalid UTF-8 sequence");
    out.append(s_.data() + pos_, len);
    pos_ += len;
  }

  std::string string() {
    const size_t start = pos_;
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (at_end()) fail_at(start, "unterminated string");
      const char c = peek();
      if (c == '"') { ++pos_; return out; }
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (static_cast<unsigned char>(c) >= 0x80) { utf8_sequence(out); continue; }
      if (c != '\\') { out += c; ++pos_; continue; }
      ++pos_;
      if (at_end()) fail_at(start, "unterminated string");
      const char e = peek();
      ++pos_;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const size_t esc_at = pos_ - 2;
          uint32_t cp = hex4();
          if (cp >= 0xdc00 && cp <= 0xdfff) fail_at(esc_at, "unpaired low surrogate in \\u escape");
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (s_.substr(pos_, 2) != "\\u") fail_at(esc_at, "unpaired high surrogate in \\u escape");
            pos_ += 2;
            const uint32_t lo = hex4();
            if (lo < 0xdc00 || lo > 0xdfff) fail_at(esc_at, "unpaired high surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          append_utf8(out, cp);
          break;
        }
        default: fail_at(pos_ - 1, "invalid escape character");
      }
    }
  }

  void number(JsonValue& v) {
    const size_t start = pos_;
    auto digits = [&]() {
      size_t n = 0;
      while (!at_end() && peek() >= '0' && peek() <= '9') { ++pos_; ++n; }
      return n;
    };
    if (peek() == '-') ++pos_;
    if (at_end()) fail("truncated number");
    if (peek() == '0') {
      ++pos_;
      if (!at_end() && peek() >= '0' && peek() <= '9') fail("leading zero in number");
    } else if (digits() == 0) {
      fail("expected a digit");
    }
    bool integral_literal = true;
    if (!at_end() && peek() == '.') {
      ++pos_;
      integral_literal = false;
      if (digits() == 0) fail("expected a digit after '.'");
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      integral_literal = false;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (digits() == 0) fail("expected a digit in exponent");
    }
    const char* b = s_.data() + start;
    const char* e = s_.data() + pos_;
    v.type = JsonValue::Type::Number;
    // from_chars is locale-independent, unlike strtod.
    auto r = std::from_chars(b, e, v.number);
    if (r.ec == std::errc::result_out_of_range) {
      // A negative exponent means underflow, which rounds to zero as JSON readers do;
      // anything else overflowed a double, and JSON has no infinity.
      const char* x = b;
      while (x < e && *x != 'e' && *x != 'E') ++x;
      if (x + 1 < e && x[1] == '-') v.number = (*b == '-') ? -0.0 : 0.0;
      else fail_at(start, "number out of range");
    } else if (r.ec != std::errc() || r.ptr != e) {
      fail_at(start, "invalid number");
    }
    if (integral_literal) {
      int64_t i = 0;
      auto ri = std::from_chars(b, e, i);
      if (ri.ec == std::errc() && ri.ptr == e) { v.is_int = true; v.integer = i; }
    } else if (std::isfinite(v.number) && v.number == std::floor(v.number) &&
               std::fabs(v.number) <= 9007199254740992.0) {
      // 4096.0 or 1e3 still counts as an integer when the double is exact.
      v.is_int = true;
      v.integer = static_cast<int64_t>(v.number);
    }
  }
};

}  // namespace

JsonValue parse_json(std::string_view text, int max_depth) {
  return Parser(text, max_depth).document();
}

}  // namespace sdllm
