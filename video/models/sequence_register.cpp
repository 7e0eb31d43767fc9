#include "video/models/sequence_register.h"

#include "engine/registry/registry.h"
#include "engine/train/components.h"
#include "video/models/attention_cluster.h"
#include "video/models/attention_lstm.h"
#include "video/models/nextvlad.h"

namespace oar::video {

namespace {

// The keys every sequence model takes (PaddleVideo's MODEL section names), with YouTube-8M's
// defaults.
Schema sequence_schema(const std::string& name, const std::string& doc) {
  Schema s("model", name, doc);
  s.key<std::vector<std::string>>("feature_names", {"rgb", "audio"},
                                  "modalities, in the order the reader delivers them")
      .key<std::vector<int64_t>>("feature_dims", {1024, 128}, "feature size of each modality")
      .range(1, 1 << 20)
      .key<int64_t>("num_classes", 3862, "output classes (multi-label)")
      .range(1, 1000000)
      .key<double>("drop_rate", 0.5, "dropout probability")
      .range(0, 0.99);
  return s;
}

// Reads the shared keys; a length mismatch is a ConfigError at the section.
void read_common(const Config& c, const std::string& k, SequenceModelOptions& o) {
  o.feature_names = c.get<std::vector<std::string>>(k + ".feature_names");
  o.feature_dims = c.get<std::vector<int64_t>>(k + ".feature_dims");
  o.num_classes = c.get<int64_t>(k + ".num_classes");
  o.drop_rate = c.get<double>(k + ".drop_rate");
  if (o.feature_names.size() != o.feature_dims.size() || o.feature_names.empty())
    throw c.error(k + ".feature_dims", "needs one size per entry of feature_names (" +
                                           std::to_string(o.feature_names.size()) + " names, " +
                                           std::to_string(o.feature_dims.size()) + " sizes)");
}

void check_per_modality(const Config& c, const std::string& key, size_t got, size_t want) {
  if (got != want)
    throw c.error(key, "needs one entry per modality of feature_names (" + std::to_string(want) +
                           "), got " + std::to_string(got));
}

}  // namespace

void register_sequence_models() {
  static bool done = false;
  if (done) return;
  done = true;
  {
    Schema s = sequence_schema(
        "attention_lstm",
        "Attention LSTM (PaddleVideo): per modality fc + tanh, bidirectional LSTM, attention "
        "pooling; fc relu, fc tanh, logits");
    s.key<int64_t>("embedding_size", 512, "fc size before the LSTM")
        .range(1, 1 << 20)
        .key<int64_t>("lstm_size", 1024, "LSTM hidden units per direction")
        .range(1, 1 << 20)
        .key<std::vector<int64_t>>("fc_sizes", {8192, 4096},
                                   "fcs after pooling: relu on each, tanh on the last")
        .range(1, 1 << 20);
    models().add(s, [](const Config& c, const std::string& k, ModelContext ctx) {
      AttentionLstmOptions o;
      read_common(c, k, o);
      o.embedding_size = c.get<int64_t>(k + ".embedding_size");
      o.lstm_size = c.get<int64_t>(k + ".lstm_size");
      o.fc_sizes = c.get<std::vector<int64_t>>(k + ".fc_sizes");
      if (o.fc_sizes.empty()) throw c.error(k + ".fc_sizes", "needs at least one size");
      return std::make_shared<AttentionLstm>(o, ctx.init_generator);
    });
  }
  {
    Schema s = sequence_schema(
        "attention_cluster",
        "Attention Cluster (Long et al. 2018): shifting attention units per modality, L2 norm, "
        "fc tanh layers, logits; order-free");
    s.key<std::vector<int64_t>>("cluster_nums", {32, 32}, "attention units per modality")
        .range(1, 1 << 16)
        .key<std::vector<int64_t>>("fc_sizes", {1024, 4096}, "fcs after the clusters (tanh)")
        .range(1, 1 << 20);
    models().add(s, [](const Config& c, const std::string& k, ModelContext ctx) {
      AttentionClusterOptions o;
      read_common(c, k, o);
      o.cluster_nums = c.get<std::vector<int64_t>>(k + ".cluster_nums");
      check_per_modality(c, k + ".cluster_nums", o.cluster_nums.size(), o.feature_names.size());
      o.fc_sizes = c.get<std::vector<int64_t>>(k + ".fc_sizes");
      if (o.fc_sizes.empty()) throw c.error(k + ".fc_sizes", "needs at least one size");
      return std::make_shared<AttentionCluster>(o, ctx.init_generator);
    });
  }
  {
    Schema s = sequence_schema(
        "nextvlad",
        "NeXtVLAD (Lin et al. 2018): grouped soft-assignment VLAD per modality, BN, fc + BN, "
        "context gating, logits; order-free");
    s.key<int64_t>("cluster_size", 128, "VLAD clusters")
        .range(1, 1 << 16)
        .key<int64_t>("groups", 8, "groups each expanded frame is split into")
        .range(1, 1 << 16)
        .key<int64_t>("expansion", 2, "frame expansion factor")
        .range(1, 64)
        .key<int64_t>("hidden_size", 2048, "fc size after the VLADs")
        .range(1, 1 << 20)
        .key<int64_t>("gating_reduction", 8, "context-gating bottleneck: hidden_size / this")
        .range(1, 1 << 20);
    models().add(s, [](const Config& c, const std::string& k, ModelContext ctx) {
      NeXtVladOptions o;
      read_common(c, k, o);
      o.cluster_size = c.get<int64_t>(k + ".cluster_size");
      o.groups = c.get<int64_t>(k + ".groups");
      o.expansion = c.get<int64_t>(k + ".expansion");
      o.hidden_size = c.get<int64_t>(k + ".hidden_size");
      o.gating_reduction = c.get<int64_t>(k + ".gating_reduction");
      for (size_t i = 0; i < o.feature_dims.size(); ++i)
        if ((o.expansion * o.feature_dims[i]) % o.groups != 0)
          throw c.error(k + ".groups",
                        "must divide expansion x feature_dims[" + std::to_string(i) +
                            "] = " + std::to_string(o.expansion * o.feature_dims[i]));
      if (o.hidden_size < o.gating_reduction)
        throw c.error(k + ".gating_reduction",
                      "must not exceed hidden_size (" + std::to_string(o.hidden_size) + ")");
      return std::make_shared<NeXtVlad>(o, ctx.init_generator);
    });
  }
}

}  // namespace oar::video
