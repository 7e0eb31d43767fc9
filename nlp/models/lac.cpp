#include "nlp/models/lac.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <ostream>

#include "engine/core/error.h"
#include "engine/ops.h"
#include "engine/train/components.h"
#include "nlp/io/paddle_tensor.h"
#include "nlp/layers/crf.h"

namespace oar::nlp {

namespace {

// Python's str.isspace() code points: what jieba's `str1.strip()` removes.
bool python_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// Length of the UTF-8 sequence at s[i] (1 for an invalid byte) and its code point.
size_t utf8_next(const std::string& s, size_t i, uint32_t& cp) {
  const auto b = static_cast<unsigned char>(s[i]);
  size_t n = 0;
  uint32_t min = 0;
  if (b < 0x80) {
    cp = b;
    return 1;
  } else if ((b & 0xE0) == 0xC0) {
    n = 2, cp = b & 0x1F, min = 0x80;
  } else if ((b & 0xF0) == 0xE0) {
    n = 3, cp = b & 0x0F, min = 0x800;
  } else if ((b & 0xF8) == 0xF0) {
    n = 4, cp = b & 0x07, min = 0x10000;
  } else {
    cp = 0xFFFD;
    return 1;
  }
  if (i + n > s.size()) {
    cp = 0xFFFD;
    return 1;
  }
  for (size_t k = 1; k < n; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) {
      cp = 0xFFFD;
      return 1;
    }
    cp = (cp << 6) | (c & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    cp = 0xFFFD;
    return 1;
  }
  return n;
}

// "id<TAB>value" lines, as jieba's load_kv_dict reads them (other lines are skipped).
std::vector<std::pair<int64_t, std::string>> read_kv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  OAR_CHECK(in, path, ": cannot open (a LAC directory holds word.dic, tag.dic, model_baseline/)");
  std::vector<std::pair<int64_t, std::string>> out;
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const auto tab = line.find('\t');
    if (tab == std::string::npos || line.find('\t', tab + 1) != std::string::npos) continue;
    int64_t id = 0;
    try {
      size_t used = 0;
      id = std::stoll(line.substr(0, tab), &used);
      OAR_CHECK(used == tab && id >= 0, "");
    } catch (const std::exception&) {
      OAR_FAIL(path, ":", lineno, ": expected a non-negative id before the tab, got '",
               line.substr(0, tab), "'");
    }
    out.emplace_back(id, line.substr(tab + 1));
  }
  OAR_CHECK(!out.empty(), path, ": no 'id<TAB>value' lines");
  return out;
}

Tensor expect_param(const std::map<std::string, Tensor>& p, const std::string& name, int64_t rank,
                    const std::string& origin) {
  const auto it = p.find(name);
  OAR_CHECK(it != p.end(), origin, ": parameter '", name, "' is missing (not a LAC model?)");
  OAR_CHECK(it->second.dim() == rank, origin, ": parameter '", name, "' has shape ",
            shape_str(it->second.shape()), ", expected rank ", rank);
  return it->second;
}

}  // namespace

PaddleFc::PaddleFc(int64_t in, int64_t out, Generator* gen) {
  w_0 = register_parameter("w_0", rand({in, out}, gen, -0.1, 0.1));
  b_0 = register_parameter("b_0", zeros({out}));
}

Tensor PaddleFc::forward(const Tensor& x) {
  return add(matmul(x, w_0), b_0);
}

void PaddleFc::describe(std::ostream& os) const {
  os << w_0.size(0) << " -> " << w_0.size(1);
}

PaddleGru::PaddleGru(int64_t hidden_, Generator* gen) : hidden(hidden_) {
  w_0 = register_parameter("w_0", rand({hidden, 3 * hidden}, gen, -0.1, 0.1));
  b_0 = register_parameter("b_0", zeros({1, 3 * hidden}));
}

void PaddleGru::describe(std::ostream& os) const {
  os << "hidden=" << hidden;
}

Tensor paddle_dynamic_gru(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& lengths,
                          bool reverse) {
  OAR_CHECK(w.defined() && w.dim() == 2 && w.size(1) == 3 * w.size(0),
            "dynamic_gru: weight must be [H, 3H], got ", w.defined() ? shape_str(w.shape()) : "");
  const int64_t h = w.size(0);
  OAR_CHECK(x.dim() == 3 && x.size(2) == 3 * h, "dynamic_gru: input must be [N, L, ", 3 * h,
            "], got ", shape_str(x.shape()));
  OAR_CHECK(b.numel() == 3 * h, "dynamic_gru: bias must hold ", 3 * h, " values, got ",
            shape_str(b.shape()));
  const int64_t n = x.size(0), l = x.size(1);
  OAR_CHECK(lengths.shape() == (Shape{n}), "dynamic_gru: lengths must be [", n, "]");
  const Tensor flat = w.reshape({3 * h * h});
  const Tensor w_ur = flat.slice(0, 0, 2 * h * h).reshape({h, 2 * h});
  const Tensor w_c = flat.slice(0, 2 * h * h, 3 * h * h).reshape({h, h});
  const Tensor g = add(x, b.reshape({3 * h}));
  const Tensor lens = lengths.to(x.device()).to(DType::i64).unsqueeze(1);
  Tensor state = zeros({n, h}, x.dtype(), x.device());
  const Tensor none = zeros({n, h}, x.dtype(), x.device());
  std::vector<Tensor> out(static_cast<size_t>(l));
  for (int64_t k = 0; k < l; ++k) {
    const int64_t s = reverse ? l - 1 - k : k;
    const Tensor gs = g.select(1, s);
    const Tensor ur = sigmoid(add(gs.slice(1, 0, 2 * h), matmul(state, w_ur)));
    const Tensor u = ur.slice(1, 0, h);
    const Tensor r = ur.slice(1, h, 2 * h);
    const Tensor c = tanh(add(gs.slice(1, 2 * h, 3 * h), matmul(mul(r, state), w_c)));
    const Tensor next = add(sub(state, mul(u, state)), mul(u, c));
    const Tensor active = gt(lens, static_cast<double>(s));
    state = where(active, next, state);
    out[static_cast<size_t>(s)] = where(active, next, none);
  }
  return stack(out, 1);
}

LacModel::LacModel(const LacConfig& c, Generator* gen) : config(c) {
  OAR_CHECK(
      c.vocab_size >= 1 && c.emb_dim >= 1 && c.hidden >= 1 && c.num_layers >= 1 && c.num_tags >= 1,
      "LAC: sizes must be positive");
  word_emb = register_parameter("word_emb", rand({c.vocab_size, c.emb_dim}, gen, -0.1, 0.1));
  crfw = register_parameter("crfw", rand({c.num_tags + 2, c.num_tags}, gen, -0.1, 0.1));
  int64_t in = c.emb_dim;
  for (int64_t layer = 0; layer < c.num_layers; ++layer) {
    for (int d = 0; d < 2; ++d) {
      const auto k = static_cast<int64_t>(fc.size());
      fc.push_back(register_module("fc_" + std::to_string(k),
                                   std::make_shared<PaddleFc>(in, 3 * c.hidden, gen)));
      gru.push_back(
          register_module("gru_" + std::to_string(k), std::make_shared<PaddleGru>(c.hidden, gen)));
    }
    in = 2 * c.hidden;
  }
  fc.push_back(register_module("fc_" + std::to_string(fc.size()),
                               std::make_shared<PaddleFc>(in, c.num_tags, gen)));
}

Tensor LacModel::emissions(const Tensor& ids, const Tensor& lengths) {
  OAR_CHECK(ids.dim() == 2 && (ids.dtype() == DType::i64 || ids.dtype() == DType::i32),
            "LAC: ids must be integer [N, L], got ", shape_str(ids.shape()));
  OAR_CHECK(lengths.shape() == (Shape{ids.size(0)}), "LAC: lengths must be [", ids.size(0), "]");
  const auto lens = lengths.to(Device::cpu()).to(DType::i64).to_vector<int64_t>();
  for (size_t k = 0; k < lens.size(); ++k)
    OAR_CHECK(lens[k] >= 1 && lens[k] <= ids.size(1), "LAC: length ", lens[k], " of sequence ", k,
              " is outside [1, ", ids.size(1), "]");
  Tensor x = embedding(word_emb, ids);
  for (int64_t layer = 0; layer < config.num_layers; ++layer) {
    const auto f = static_cast<size_t>(2 * layer);
    const Tensor fwd =
        paddle_dynamic_gru(fc[f]->forward(x), gru[f]->w_0, gru[f]->b_0, lengths, false);
    const Tensor bwd =
        paddle_dynamic_gru(fc[f + 1]->forward(x), gru[f + 1]->w_0, gru[f + 1]->b_0, lengths, true);
    x = concat({fwd, bwd}, 2);
  }
  return fc.back()->forward(x);
}

Tensor LacModel::decode(const Tensor& ids, const Tensor& lengths) {
  return crf_viterbi(emissions(ids, lengths), crfw, lengths);
}

Tensor LacModel::forward(const Tensor& ids) {
  OAR_CHECK(ids.dim() == 2, "LAC: ids must be [N, L], got ", shape_str(ids.shape()));
  return emissions(ids, full({ids.size(0)}, static_cast<double>(ids.size(1)), DType::i64));
}

void LacModel::describe(std::ostream& os) const {
  os << "vocab=" << config.vocab_size << ", emb=" << config.emb_dim << ", hidden=" << config.hidden
     << ", bigru_layers=" << config.num_layers << ", tags=" << config.num_tags;
}

LacConfig lac_config_from(const std::map<std::string, Tensor>& p, const std::string& origin) {
  LacConfig c;
  const Tensor emb = expect_param(p, "word_emb", 2, origin);
  c.vocab_size = emb.size(0);
  c.emb_dim = emb.size(1);
  c.hidden = expect_param(p, "gru_0.w_0", 2, origin).size(0);
  int64_t grus = 0;
  while (p.count("gru_" + std::to_string(grus) + ".w_0")) ++grus;
  OAR_CHECK(grus >= 2 && grus % 2 == 0, origin, ": ", grus,
            " GRU weights (gru_K.w_0); a bidirectional stack needs an even number");
  c.num_layers = grus / 2;
  c.num_tags = expect_param(p, "fc_" + std::to_string(grus) + ".w_0", 2, origin).size(1);
  return c;
}

LacSegmenter LacSegmenter::load(const std::string& dir) {
  LacSegmenter s;
  for (const auto& [id, ch] : read_kv(dir + "/word.dic")) {
    OAR_CHECK(s.char_ids.emplace(ch, id).second, dir, "/word.dic: '", ch, "' appears twice");
  }
  const auto oov = s.char_ids.find("OOV");
  OAR_CHECK(oov != s.char_ids.end(), dir, "/word.dic: no 'OOV' entry");
  s.oov_id = oov->second;
  for (const auto& [id, tag] : read_kv(dir + "/tag.dic")) {
    if (static_cast<size_t>(id) >= s.tags.size()) s.tags.resize(static_cast<size_t>(id) + 1);
    OAR_CHECK(s.tags[static_cast<size_t>(id)].empty(), dir, "/tag.dic: id ", id, " appears twice");
    s.tags[static_cast<size_t>(id)] = tag;
  }
  for (size_t k = 0; k < s.tags.size(); ++k)
    OAR_CHECK(!s.tags[k].empty(), dir, "/tag.dic: no tag with id ", k);
  const std::string pdir = dir + "/model_baseline";
  const auto params = read_paddle_dir(pdir);
  const LacConfig c = lac_config_from(params, pdir);
  OAR_CHECK(c.num_tags == static_cast<int64_t>(s.tags.size()), pdir, ": the emission layer has ",
            c.num_tags, " outputs but tag.dic names ", s.tags.size(), " tags");
  int64_t max_id = 0;
  for (const auto& [ch, id] : s.char_ids) max_id = std::max(max_id, id);
  OAR_CHECK(max_id < c.vocab_size, dir, "/word.dic: id ", max_id, " but word_emb has ",
            c.vocab_size, " rows");
  s.model = std::make_shared<LacModel>(c);
  try {
    s.model->load_state_dict(params, true);
  } catch (const Error& e) {
    OAR_FAIL(pdir, ": ", e.what());
  }
  s.model->eval();
  return s;
}

std::vector<std::string> LacSegmenter::characters(const std::string& text) {
  std::vector<std::string> out;
  std::vector<bool> space;
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    const size_t n = utf8_next(text, i, cp);
    out.push_back(text.substr(i, n));
    space.push_back(n > 1 || cp != 0xFFFD ? python_space(cp) : false);
    i += n;
  }
  size_t b = 0, e = out.size();
  while (b < e && space[b]) ++b;
  while (e > b && space[e - 1]) --e;
  return std::vector<std::string>(out.begin() + static_cast<std::ptrdiff_t>(b),
                                  out.begin() + static_cast<std::ptrdiff_t>(e));
}

std::vector<int64_t> LacSegmenter::ids(const std::vector<std::string>& chars) const {
  std::vector<int64_t> out;
  out.reserve(chars.size());
  for (const auto& c : chars) {
    const auto it = char_ids.find(c);
    out.push_back(it == char_ids.end() ? oov_id : it->second);
  }
  return out;
}

std::vector<LacWord> LacSegmenter::words(const std::vector<std::string>& chars,
                                         const std::vector<std::string>& tags) {
  OAR_CHECK(chars.size() == tags.size(), "LAC: ", chars.size(), " characters but ", tags.size(),
            " tags");
  const auto head = [](const std::string& t) { return t.substr(0, t.find('-')); };
  const auto ends_with_b = [](const std::string& t) {
    return t.size() >= 2 && t.compare(t.size() - 2, 2, "-B") == 0;
  };
  std::vector<LacWord> out;
  for (size_t i = 0; i < tags.size(); ++i) {
    if (out.empty() || ends_with_b(tags[i]) || (tags[i] == "O" && tags[i - 1] != "O"))
      out.push_back({chars[i], head(tags[i])});
    else
      out.back().text += chars[i];
  }
  return out;
}

std::vector<std::vector<int64_t>> LacSegmenter::tag_ids(
    const std::vector<std::vector<std::string>>& chars) {
  std::vector<std::vector<int64_t>> out(chars.size());
  std::vector<size_t> rows;
  int64_t l = 0;
  for (size_t k = 0; k < chars.size(); ++k)
    if (!chars[k].empty()) {
      rows.push_back(k);
      l = std::max(l, static_cast<int64_t>(chars[k].size()));
    }
  if (rows.empty()) return out;
  const auto n = static_cast<int64_t>(rows.size());
  std::vector<int64_t> id_data(static_cast<size_t>(n * l), 0), len_data;
  for (size_t r = 0; r < rows.size(); ++r) {
    const auto v = ids(chars[rows[r]]);
    std::copy(v.begin(), v.end(), id_data.begin() + static_cast<std::ptrdiff_t>(r) * l);
    len_data.push_back(static_cast<int64_t>(v.size()));
  }
  NoGradGuard no_grad;
  const auto path =
      model->decode(tensor(id_data, {n, l}), tensor(len_data, {n})).to_vector<int64_t>();
  for (size_t r = 0; r < rows.size(); ++r) {
    const auto begin = path.begin() + static_cast<std::ptrdiff_t>(r) * l;
    out[rows[r]].assign(begin, begin + len_data[r]);
  }
  return out;
}

std::vector<std::vector<LacWord>> LacSegmenter::segment(const std::vector<std::string>& texts) {
  std::vector<std::vector<std::string>> chars;
  chars.reserve(texts.size());
  for (const auto& t : texts) chars.push_back(characters(t));
  const auto ids_out = tag_ids(chars);
  std::vector<std::vector<LacWord>> out(texts.size());
  for (size_t k = 0; k < texts.size(); ++k) {
    std::vector<std::string> names;
    for (const int64_t id : ids_out[k]) names.push_back(tags[static_cast<size_t>(id)]);
    out[k] = words(chars[k], names);
  }
  return out;
}

void register_lac_model() {
  Schema s("model", "lac",
           "Baidu's LAC tagger (jieba lac_small): embedding -> 2 x BiGRU (Paddle dynamic_gru) -> "
           "fc emissions; forward(ids) gives [N, L, tags] emissions, decode by its CRF (crfw)");
  s.path("pretrained", "",
         "a LAC directory (word.dic, tag.dic, model_baseline/); empty: a fresh model")
      .key<int64_t>("vocab_size", 20941, "characters (fresh model only)")
      .range(1, 100000000)
      .key<int64_t>("num_tags", 57, "tags (fresh model only)")
      .range(1, 100000)
      .key<int64_t>("hidden", 128, "GRU width and embedding size (fresh model only)")
      .range(1, 100000);
  models().add(s, [](const Config& c, const std::string& k, ModelContext ctx) {
    const std::string dir = c.get<std::string>(k + ".pretrained", "");
    if (!dir.empty()) {
      try {
        return std::static_pointer_cast<nn::Module>(LacSegmenter::load(dir).model);
      } catch (const Error& e) {
        throw c.error(k + ".pretrained", e.what(), "a LAC directory as jieba ships it");
      }
    }
    LacConfig lc;
    lc.vocab_size = c.get<int64_t>(k + ".vocab_size");
    lc.num_tags = c.get<int64_t>(k + ".num_tags");
    lc.hidden = lc.emb_dim = c.get<int64_t>(k + ".hidden");
    return std::static_pointer_cast<nn::Module>(std::make_shared<LacModel>(lc, ctx.init_generator));
  });
}

}  // namespace oar::nlp
