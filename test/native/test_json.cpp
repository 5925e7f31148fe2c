// Tests of the JSON parser (cpp/json.h): values, numbers, strings, structure, nesting
// limits, truncation and random corruption. Exits non-zero on any failure.
#include <random>
#include <string>

#include "json.h"
#include "loader_test_harness.h"

using namespace sdllm;
using namespace sdllm_test;

namespace {

// ---------------------------------------------------------------------------
// JSON

void test_json_values() {
  JsonValue v = parse_json(R"( {"a": [1, -2, 3.5, true, false, null], "b": {"c": "x"}, "e": {}} )");
  check(v.is_object() && v.object.size() == 3, "object with three members");
  const JsonValue* a = v.find("a");
  check(a && a->is_array() && a->array.size() == 6, "array member");
  check(a->array[0].is_int && a->array[0].integer == 1, "int 1");
  check(a->array[1].is_int && a->array[1].integer == -2, "int -2");
  check(!a->array[2].is_int && a->array[2].number == 3.5, "double 3.5");
  check(a->array[3].is_bool() && a->array[3].boolean, "true");
  check(a->array[4].is_bool() && !a->array[4].boolean, "false");
  check(a->array[5].is_null(), "null");
  check(v.find("b")->find("c")->string == "x", "nested string");
  check(v.find("e")->is_object() && v.find("e")->object.empty(), "empty object");
  check(v.find("zz") == nullptr, "absent key");
  check(parse_json("[]").array.empty(), "empty array");
  check(parse_json("\"\"").string.empty(), "empty string");
  check(parse_json("0").is_int, "zero");
  check(parse_json("-0").is_int && parse_json("-0").integer == 0, "minus zero");
}

void test_json_numbers() {
  JsonValue big = parse_json("9007199254740993");  // 2^53 + 1: a double would round it
  check(big.is_int && big.integer == 9007199254740993LL, "exact int64 beyond 2^53");
  check(parse_json("9223372036854775807").integer == INT64_MAX, "int64 max");
  JsonValue over = parse_json("9223372036854775808");
  check(over.is_number() && !over.is_int, "2^63 is a number but not an int64");
  check(parse_json("4096.0").is_int && parse_json("4096.0").integer == 4096, "4096.0 counts as integral");
  check(parse_json("1e3").is_int && parse_json("1e3").integer == 1000, "1e3 counts as integral");
  check(!parse_json("1e-5").is_int && parse_json("1e-5").number == 1e-5, "1e-5");
  check(parse_json("500000.0").number == 500000.0, "rope theta");
  check(parse_json("1E+2").number == 100.0, "capital exponent");
  check(parse_json("1e-400").number == 0.0, "underflow rounds to zero");
  for (const char* bad : {"01", "-", "1.", ".5", "+1", "1e", "1e+", "--1", "0x10", "1e400", "NaN", "Infinity", "-01"})
    expect_throw<JsonError>(std::string("bad number ") + bad, [&] { parse_json(bad); }, {"JSON error at byte"});
}

void test_json_strings() {
  check(parse_json(R"("a\"b\\c\/d\b\f\n\r\t")").string == "a\"b\\c/d\b\f\n\r\t", "simple escapes");
  check(parse_json(R"("\u00e9")").string == "\xc3\xa9", "\\u00e9 to UTF-8");
  check(parse_json(R"("\u20AC")").string == "\xe2\x82\xac", "\\u20AC to UTF-8");
  check(parse_json(R"("\ud83d\ude00")").string == "\xf0\x9f\x98\x80", "surrogate pair to one code point");
  check(parse_json("\"\xc3\xa9\xf0\x9f\x98\x80\"").string == "\xc3\xa9\xf0\x9f\x98\x80", "raw UTF-8 kept");
  check(parse_json(R"("\u0000")").string == std::string(1, '\0'), "escaped NUL");
  expect_throw<JsonError>("lone high surrogate", [] { parse_json(R"("\ud83d")"); }, {"surrogate"});
  expect_throw<JsonError>("high surrogate then letter", [] { parse_json(R"("\ud83dx")"); }, {"surrogate"});
  expect_throw<JsonError>("high + high surrogate", [] { parse_json(R"("\ud83d\ud83d")"); }, {"surrogate"});
  expect_throw<JsonError>("lone low surrogate", [] { parse_json(R"("\ude00")"); }, {"surrogate"});
  expect_throw<JsonError>("bad hex", [] { parse_json(R"("\u12g4")"); }, {"hex"});
  expect_throw<JsonError>("truncated \\u", [] { parse_json(R"("\u12)"); });
  expect_throw<JsonError>("invalid escape", [] { parse_json(R"("\x")"); }, {"escape"});
  expect_throw<JsonError>("raw newline", [] { parse_json("\"a\nb\""); }, {"control character"});
  expect_throw<JsonError>("unterminated", [] { parse_json("\"abc"); }, {"unterminated", "byte 0"});
  expect_throw<JsonError>("invalid UTF-8 byte", [] { parse_json("\"\xff\""); }, {"UTF-8"});
  expect_throw<JsonError>("overlong UTF-8", [] { parse_json("\"\xc0\xaf\""); }, {"UTF-8"});
  expect_throw<JsonError>("UTF-8 surrogate", [] { parse_json("\"\xed\xa0\x80\""); }, {"UTF-8"});
  expect_throw<JsonError>("truncated UTF-8", [] { parse_json("\"\xe2\x82"); }, {"UTF-8"});
}

void test_json_structure() {
  expect_throw<JsonError>("duplicate key", [] { parse_json(R"({"a": 1, "b": 2, "a": 3})"); },
                          {"duplicate key \"a\"", "byte 17"});
  expect_throw<JsonError>("trailing comma in object", [] { parse_json(R"({"a": 1,})"); });
  expect_throw<JsonError>("trailing comma in array", [] { parse_json("[1,]"); });
  expect_throw<JsonError>("missing colon", [] { parse_json(R"({"a" 1})"); }, {"':'"});
  expect_throw<JsonError>("unquoted key", [] { parse_json("{a: 1}"); });
  expect_throw<JsonError>("trailing garbage", [] { parse_json("{} x"); }, {"byte 3"});
  expect_throw<JsonError>("two values", [] { parse_json("1 2"); });
  expect_throw<JsonError>("empty input", [] { parse_json(""); }, {"byte 0"});
  expect_throw<JsonError>("whitespace only", [] { parse_json("   "); });
  expect_throw<JsonError>("bad literal", [] { parse_json("tru"); });
  expect_throw<JsonError>("single quotes", [] { parse_json("'a'"); });
  expect_throw<JsonError>("comment", [] { parse_json("[1 /* c */]"); });
  expect_throw<JsonError>("NUL byte", [] { parse_json(std::string("[1,\0 2]", 7)); });

  // Deep nesting: the limit, not the stack, stops it.
  std::string deep(1000000, '[');
  expect_throw<JsonError>("one million brackets", [&] { parse_json(deep); }, {"nesting"});
  std::string deep_obj;
  for (int i = 0; i < 100000; ++i) deep_obj += "{\"a\":";
  expect_throw<JsonError>("deep objects", [&] { parse_json(deep_obj); }, {"nesting"});
  std::string ok_depth = std::string(128, '[') + std::string(128, ']');
  check(parse_json(ok_depth).is_array(), "depth 128 is allowed");
  std::string too_deep = std::string(129, '[') + std::string(129, ']');
  expect_throw<JsonError>("depth 129", [&] { parse_json(too_deep); }, {"nesting"});

  // Every proper prefix of a document is truncated and must be rejected.
  const std::string doc = R"({"k": [1, 2.5e3, "s\u00e9\n", {"x": null, "y": [true, false]}], "z": -7})";
  parse_json(doc);
  int prefix_failures = 0;
  for (size_t n = 0; n < doc.size(); ++n) {
    try {
      parse_json(doc.substr(0, n));
      ++prefix_failures;
    } catch (const JsonError&) {
    }
  }
  check(prefix_failures == 0, "every truncated prefix is rejected");

  // Random corruption must only ever produce a value or a JsonError.
  std::mt19937 rng(1234);
  int fuzz_bad = 0;
  const std::string alphabet = "{}[]\",:\\u0123456789.eE+-tfnrl \x80\xc3\xff";
  for (int iter = 0; iter < 20000; ++iter) {
    std::string s = doc;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % (s.size() + 1);
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0: if (at < s.size()) s[at] = c; break;
        case 1: s.insert(s.begin() + at, c); break;
        default: if (at < s.size()) s.erase(at, 1); break;
      }
    }
    try {
      parse_json(s);
    } catch (const JsonError&) {
    } catch (...) {
      ++fuzz_bad;
    }
  }
  check(fuzz_bad == 0, "fuzzed documents only throw JsonError");
}

}  // namespace

int main() {
  test_json_values();
  test_json_numbers();
  test_json_strings();
  test_json_structure();
  return finish("json");
}
