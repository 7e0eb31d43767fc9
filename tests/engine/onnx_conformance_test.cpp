// Runs ONNX's node conformance tests (Debian's libonnx-testdata) through oar ops: each model's
// nodes are evaluated by the handlers in tests/support/onnx_ops*.cpp and the graph outputs are
// compared with the expected ones. A test whose op has no handler, or whose handler throws
// onnx::Skip, is reported as skipped (a missing feature, never a pass).
//
// OAR_ONNX_DIR overrides the data directory; OAR_ONNX_FAMILIES (comma-separated, see
// onnx_op_families()) limits the handlers; OAR_ONNX_FILTER keeps tests whose name contains it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>

#include "engine/autograd/grad_mode.h"
#include "tests/support/onnx.h"
#include "tests/support/onnx_ops.h"

namespace fs = std::filesystem;
using namespace oar;

namespace {

std::string env_or(const char* name, const std::string& def) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : def;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

// Empty when `got` matches `want`, else what differs.
std::string compare(const Tensor& got, const Tensor& want, DType want_dtype) {
  if (got.dtype() != want_dtype)
    return detail::concat("dtype ", dtype_name(got.dtype()), ", expected ", dtype_name(want_dtype));
  if (got.shape() != want.shape())
    return detail::concat("shape ", shape_str(got.shape()), ", expected ", shape_str(want.shape()));
  if (is_floating(want_dtype)) {
    // f32: |a-b| <= 1e-4 + 1e-3|b|; f16 and bf16 carry 11 and 8 bits, so their tolerance is wider.
    const double atol = want_dtype == DType::f32 ? 1e-4 : 1e-3;
    const double rtol = want_dtype == DType::f32 ? 1e-3 : (want_dtype == DType::f16 ? 2e-3 : 1e-2);
    const auto a = got.to_vector<float>(), b = want.to_vector<float>();
    for (size_t i = 0; i < a.size(); ++i) {
      if (std::isnan(a[i]) && std::isnan(b[i])) continue;
      if (a[i] == b[i]) continue;  // infinities
      if (!(std::fabs(a[i] - b[i]) <= atol + rtol * std::fabs(b[i])))
        return detail::concat("element ", i, ": ", a[i], ", expected ", b[i]);
    }
    return "";
  }
  const auto a = got.to_vector<int64_t>(), b = want.to_vector<int64_t>();
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return detail::concat("element ", i, ": ", a[i], ", expected ", b[i]);
  return "";
}

enum class Outcome { pass, skip, fail };

struct Result {
  Outcome outcome;
  std::string reason;
};

std::vector<fs::path> sorted_dirs(const fs::path& root, const std::string& prefix) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory() && e.path().filename().string().rfind(prefix, 0) == 0)
      out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// Evaluates the model on each data set in `dir`.
Result run_test(const fs::path& dir, const onnx::OpRegistry& reg) {
  onnx::Model model;
  try {
    model = onnx::load_model((dir / "model.onnx").string());
  } catch (const onnx::Skip& e) {
    return {Outcome::skip, e.what()};
  }
  const onnx::Graph& g = model.graph;
  for (const onnx::Node& n : g.nodes) {
    if (!n.domain.empty() && n.domain != "ai.onnx")
      return {Outcome::skip, "domain '" + n.domain + "' (" + n.op_type + ")"};
    if (!reg.find(n.op_type)) return {Outcome::skip, "no handler for " + n.op_type};
  }
  for (const auto* vs : {&g.inputs, &g.outputs})
    for (const onnx::ValueInfo& v : *vs)
      if (!v.is_tensor)
        return {Outcome::skip, "non-tensor value '" + v.name + "' (sequence/optional/map)"};

  std::vector<std::string> feeds;  // graph inputs that are not initializers, in order
  for (const onnx::ValueInfo& v : g.inputs)
    if (!g.initializers.count(v.name)) feeds.push_back(v.name);

  const auto sets = sorted_dirs(dir, "test_data_set_");
  if (sets.empty()) return {Outcome::skip, "no test_data_set_*"};
  NoGradGuard no_grad;
  for (const fs::path& set : sets) {
    std::map<std::string, Tensor> env(g.initializers.begin(), g.initializers.end());
    try {
      for (size_t i = 0; i < feeds.size(); ++i) {
        const fs::path p = set / ("input_" + std::to_string(i) + ".pb");
        if (fs::exists(p)) env[feeds[i]] = onnx::load_tensor(p.string());
      }
      for (const onnx::Node& n : g.nodes) {
        std::vector<Tensor> ins;
        for (const std::string& name : n.inputs) {
          if (name.empty()) {
            ins.emplace_back();
            continue;
          }
          auto it = env.find(name);
          OAR_CHECK(it != env.end(), "onnx: ", n.op_type, " input '", name, "' has no value");
          ins.push_back(it->second);
        }
        // Trailing omitted inputs are dropped so handlers see the count the node declares.
        while (!ins.empty() && !ins.back().defined()) ins.pop_back();
        const std::vector<Tensor> outs = (*reg.find(n.op_type))(n, ins, model.opset(n.domain));
        for (size_t k = 0; k < n.outputs.size(); ++k) {
          if (n.outputs[k].empty()) continue;
          if (k >= outs.size() || !outs[k].defined())
            throw onnx::Skip(n.op_type + ": output " + std::to_string(k) + " is not produced");
          env[n.outputs[k]] = outs[k];
        }
      }
      for (size_t i = 0; i < g.outputs.size(); ++i) {
        const std::string p = (set / ("output_" + std::to_string(i) + ".pb")).string();
        const Tensor want = onnx::load_tensor(p);
        const DType want_dtype = onnx::dtype_for(onnx::tensor_data_type(p), p);
        auto it = env.find(g.outputs[i].name);
        OAR_CHECK(it != env.end(), "onnx: graph output '", g.outputs[i].name, "' has no value");
        const std::string diff = compare(it->second, want, want_dtype);
        if (!diff.empty())
          return {Outcome::fail,
                  set.filename().string() + " output '" + g.outputs[i].name + "': " + diff};
      }
    } catch (const onnx::Skip& e) {
      return {Outcome::skip, e.what()};
    } catch (const std::exception& e) {
      return {Outcome::fail, set.filename().string() + ": " + e.what()};
    }
  }
  return {Outcome::pass, ""};
}

}  // namespace

TEST(OnnxConformance, NodeTests) {
  const fs::path root = env_or("OAR_ONNX_DIR", "/usr/include/onnx/backend/test/data/node");
  if (!fs::is_directory(root)) GTEST_SKIP() << "ONNX test data not found at " << root;
  onnx::OpRegistry reg;
  onnx::register_all_onnx_ops(reg, split_commas(env_or("OAR_ONNX_FAMILIES", "")));
  const std::string filter = env_or("OAR_ONNX_FILTER", "");

  int passed = 0, skipped = 0, failed = 0;
  std::vector<std::string> skips, fails;
  for (const fs::path& dir : sorted_dirs(root, "test_")) {
    const std::string name = dir.filename().string();
    if (!filter.empty() && name.find(filter) == std::string::npos) continue;
    const Result r = run_test(dir, reg);
    switch (r.outcome) {
      case Outcome::pass:
        ++passed;
        break;
      case Outcome::skip:
        ++skipped;
        skips.push_back(name + ": " + r.reason);
        break;
      case Outcome::fail:
        ++failed;
        fails.push_back(name + ": " + r.reason);
        break;
    }
  }
  std::cout << "Skipped ONNX node tests:\n";
  for (const std::string& s : skips) std::cout << "  SKIP " << s << "\n";
  for (const std::string& s : fails) std::cout << "  FAIL " << s << "\n";
  std::cout << "ONNX node tests: " << passed << " passed, " << skipped << " skipped, " << failed
            << " failed" << std::endl;
  EXPECT_EQ(failed, 0) << "failing ONNX node tests:\n"
                       << [&] {
                            std::string all;
                            for (const std::string& s : fails) all += "  " + s + "\n";
                            return all;
                          }();
  EXPECT_GT(passed, 0);
}

namespace {
std::string varint(uint64_t v) {
  std::string s;
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    s.push_back(static_cast<char>(b | (v ? 0x80 : 0)));
  } while (v);
  return s;
}
std::string key(int field, int wire) {
  return varint(static_cast<uint64_t>(field << 3 | wire));
}
std::string bytes_field(int field, const std::string& payload) {
  return key(field, 2) + varint(payload.size()) + payload;
}
template <typename T>
std::string le(T v) {
  std::string s(sizeof(T), '\0');
  std::memcpy(s.data(), &v, sizeof(T));
  return s;
}
}  // namespace

TEST(OnnxReader, TensorFieldsPackedUnpackedAndRaw) {
  // dims [2, 3], FLOAT, packed float_data.
  std::string packed;
  for (float v : {1.f, -2.f, 3.5f, 0.f, 5.f, 6.25f}) packed += le(v);
  const std::string t1 = key(1, 0) + varint(2) + key(1, 0) + varint(3) + key(2, 0) + varint(1) +
                         bytes_field(4, packed);
  Tensor a = onnx::parse_tensor(t1, "t1");
  EXPECT_EQ(a.shape(), (Shape{2, 3}));
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{1, -2, 3.5f, 0, 5, 6.25f}));
  // Packed dims, INT64, unpacked int64_data with a negative value (10-byte varint).
  const std::string t2 = bytes_field(1, varint(3)) + key(2, 0) + varint(7) + key(7, 0) +
                         varint(static_cast<uint64_t>(-1)) + key(7, 0) + varint(1ull << 40) +
                         key(7, 0) + varint(0);
  Tensor b = onnx::parse_tensor(t2, "t2");
  EXPECT_EQ(b.dtype(), DType::i64);
  EXPECT_EQ(b.to_vector<int64_t>(), (std::vector<int64_t>{-1, 1ll << 40, 0}));
  // raw_data: DOUBLE read as f32, FLOAT16 bit patterns, BOOL.
  const std::string t3 =
      key(1, 0) + varint(2) + key(2, 0) + varint(11) + bytes_field(9, le(0.5) + le(-3.0));
  EXPECT_EQ(onnx::parse_tensor(t3, "t3").to_vector<float>(), (std::vector<float>{0.5f, -3.0f}));
  const std::string t4 = key(1, 0) + varint(2) + key(2, 0) + varint(10) + key(5, 0) +
                         varint(0x3c00) + key(5, 0) + varint(0xc000);  // 1.0, -2.0 in int32_data
  Tensor h = onnx::parse_tensor(t4, "t4");
  EXPECT_EQ(h.dtype(), DType::f16);
  EXPECT_EQ(h.to_vector<float>(), (std::vector<float>{1.0f, -2.0f}));
  const std::string t5 =
      key(1, 0) + varint(3) + key(2, 0) + varint(9) + bytes_field(9, std::string("\1\0\1", 3));
  EXPECT_EQ(onnx::parse_tensor(t5, "t5").to_vector<bool>(), (std::vector<bool>{true, false, true}));
  // A 0-d tensor (no dims) with one value.
  const std::string t6 = key(2, 0) + varint(6) + bytes_field(5, varint(42));
  Tensor s = onnx::parse_tensor(t6, "t6");
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.item<int>(), 42);
}

TEST(OnnxReader, MalformedInputThrowsNamingTheSource) {
  auto expect_error = [](const std::string& bytes, const std::string& needle) {
    try {
      onnx::parse_tensor(bytes, "bad.pb");
      ADD_FAILURE() << "expected an error for " << needle;
    } catch (const onnx::Skip&) {
      ADD_FAILURE() << "malformed input reported as a skip";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("bad.pb"), std::string::npos) << msg;
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    }
  };
  expect_error(key(1, 0) + "\x80", "truncated varint");
  expect_error(key(4, 2) + varint(100) + "abc", "runs past the end");
  expect_error(key(1, 0) + varint(2) + key(2, 0) + varint(1) + bytes_field(9, "abc"), "raw_data");
  expect_error(key(1, 0) + varint(3) + key(2, 0) + varint(1) + bytes_field(4, le(1.f)),
               "float_data");
  expect_error(key(1, 3), "wire type");
  // Valid data oar cannot hold is a skip, not an error.
  EXPECT_THROW(onnx::parse_tensor(key(2, 0) + varint(8), "s.pb"), onnx::Skip);
  EXPECT_THROW(onnx::load_tensor("/nonexistent/x.pb"), Error);
  EXPECT_THROW(onnx::parse_model(key(1, 0) + varint(7), "m.onnx"), Error);  // no graph
}
