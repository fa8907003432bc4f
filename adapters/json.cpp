#include "adapters/json.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <sstream>

#include <simdjson.h>

#include "adapters/utf8.hpp"

namespace atlas::json {

namespace {

value convert(simdjson::dom::element e) {
  value v;
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY:
      v.type = value::kind::array;
      for (auto child : simdjson::dom::array(e))
        v.array.push_back(convert(child));
      break;
    case simdjson::dom::element_type::OBJECT:
      v.type = value::kind::object;
      for (auto field : simdjson::dom::object(e))
        v.object.emplace_back(std::string(field.key), convert(field.value));
      break;
    case simdjson::dom::element_type::INT64:
      v.type = value::kind::integer;
      v.integer = int64_t(e);
      v.number = static_cast<double>(v.integer);
      break;
    case simdjson::dom::element_type::UINT64:
      // Beyond int64: keep it as a floating-point number.
      v.type = value::kind::number;
      v.number = static_cast<double>(uint64_t(e));
      break;
    case simdjson::dom::element_type::DOUBLE:
      v.type = value::kind::number;
      v.number = double(e);
      break;
    case simdjson::dom::element_type::STRING:
      v.type = value::kind::string;
      v.string = std::string(std::string_view(e));
      break;
    case simdjson::dom::element_type::BOOL:
      v.type = value::kind::boolean;
      v.boolean = bool(e);
      break;
    case simdjson::dom::element_type::NULL_VALUE:
      v.type = value::kind::null;
      break;
  }
  return v;
}

void dump_into(writer& w, const value& v) {
  switch (v.type) {
    case value::kind::null: w.null(); break;
    case value::kind::boolean: w.value(v.boolean); break;
    case value::kind::integer: w.value(v.integer); break;
    case value::kind::number: w.value(v.number); break;
    case value::kind::string: w.value(v.string); break;
    case value::kind::array:
      w.begin_array();
      for (auto& x : v.array)
        dump_into(w, x);
      w.end_array();
      break;
    case value::kind::object:
      w.begin_object();
      for (auto& [k, x] : v.object) {
        w.key(k);
        dump_into(w, x);
      }
      w.end_object();
      break;
  }
}

} // namespace

value::value() = default;
value::~value() = default;
value::value(const value&) = default;
value::value(value&&) noexcept = default;
value& value::operator=(const value&) = default;
value& value::operator=(value&&) noexcept = default;

const value* value::find(std::string_view key) const {
  if (type != kind::object)
    return nullptr;
  for (auto& [k, v] : object)
    if (k == key)
      return &v;
  return nullptr;
}

std::optional<std::string> value::get_string(std::string_view key) const {
  auto v = find(key);
  if (v == nullptr || !v->is_string())
    return std::nullopt;
  return v->string;
}

std::optional<int64_t> value::get_int(std::string_view key) const {
  auto v = find(key);
  if (v == nullptr)
    return std::nullopt;
  if (v->type == kind::integer)
    return v->integer;
  if (v->type == kind::number && std::floor(v->number) == v->number
      && std::fabs(v->number) < 9e15)
    return static_cast<int64_t>(v->number);
  return std::nullopt;
}

std::string value::dump() const {
  writer w;
  dump_into(w, *this);
  return w.take();
}

std::optional<value> parse(std::string_view text, std::string& error) {
  // simdjson needs padding after the input; padded_string copies it.
  simdjson::dom::parser parser;
  simdjson::padded_string padded(text.data(), text.size());
  simdjson::dom::element root;
  auto err = parser.parse(padded).get(root);
  if (err) {
    error = std::string("invalid JSON: ") + simdjson::error_message(err);
    return std::nullopt;
  }
  return convert(root);
}

void append_quoted(std::string& out, std::string_view s) {
  out.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    // Plain printable ASCII, the common case, is copied a run at a time.
    size_t plain = i;
    while (plain < s.size()) {
      auto c = static_cast<unsigned char>(s[plain]);
      if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
        break;
      ++plain;
    }
    out.append(s.data() + i, plain - i);
    i = plain;
    if (i == s.size())
      break;
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof(buf), "\\u%04x", c);
            out += buf;
          } else {
            out.push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    // Validate one UTF-8 sequence; replace anything broken with U+FFFD so the
    // output stays valid JSON whatever a job printed.
    const size_t len = utf8::sequence_length(s, i);
    if (len > 0) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  out.push_back('"');
}

std::string quote(std::string_view s) {
  std::string out;
  append_quoted(out, s);
  return out;
}

void writer::separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back())
      out_.push_back(',');
    first_.back() = false;
  }
}

writer& writer::begin_object() {
  separate();
  out_.push_back('{');
  first_.push_back(true);
  return *this;
}

writer& writer::end_object() {
  out_.push_back('}');
  first_.pop_back();
  return *this;
}

writer& writer::begin_array() {
  separate();
  out_.push_back('[');
  first_.push_back(true);
  return *this;
}

writer& writer::end_array() {
  out_.push_back(']');
  first_.pop_back();
  return *this;
}

writer& writer::key(std::string_view k) {
  separate();
  append_quoted(out_, k);
  out_.push_back(':');
  after_key_ = true;
  return *this;
}

writer& writer::value(std::string_view s) {
  separate();
  append_quoted(out_, s);
  return *this;
}

writer& writer::value(int64_t x) {
  separate();
  out_ += std::to_string(x);
  return *this;
}

writer& writer::value(uint64_t x) {
  separate();
  out_ += std::to_string(x);
  return *this;
}

writer& writer::value(double x) {
  separate();
  if (!std::isfinite(x)) {
    out_ += "null";
    return *this;
  }
  if (x == 0 && std::signbit(x)) { // "-0" would read back as the integer 0
    out_ += "-0.0";
    return *this;
  }
  // The shortest text that reads back as exactly `x` (and no printf). A
  // whole number past int64 would print as a long integer literal, which
  // readers (simdjson included) refuse: those get an exponent.
  char buf[40];
  auto r = std::to_chars(buf, buf + sizeof(buf), x);
  if (r.ec == std::errc{} && std::fabs(x) >= 9.2e18
      && std::string_view(buf, r.ptr).find_first_of(".e") == std::string_view::npos)
    r = std::to_chars(buf, buf + sizeof(buf), x, std::chars_format::scientific);
  out_.append(buf, r.ec == std::errc{} ? r.ptr : buf);
  return *this;
}

writer& writer::value(bool x) {
  separate();
  out_ += x ? "true" : "false";
  return *this;
}

writer& writer::null() {
  separate();
  out_ += "null";
  return *this;
}

writer& writer::raw(std::string_view json_text) {
  separate();
  if (json_text.empty())
    out_ += "null";
  else
    out_.append(json_text);
  return *this;
}

std::optional<std::vector<std::string>> spec_words(const value* v, const char* field,
                                                   std::string& error) {
  std::vector<std::string> out;
  if (v == nullptr || v->is_null())
    return out;
  if (v->is_string()) {
    std::istringstream in(v->string);
    for (std::string w; in >> w;)
      out.push_back(w);
    return out;
  }
  if (v->is_array()) {
    for (auto& x : v->array) {
      if (!x.is_string()) {
        error = std::string("spec.") + field + " must hold strings only";
        return std::nullopt;
      }
      out.push_back(x.string);
    }
    return out;
  }
  error = std::string("spec.") + field + " must be a string or a list of strings";
  return std::nullopt;
}

} // namespace atlas::json
