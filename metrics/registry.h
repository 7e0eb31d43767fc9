#pragma once
// The metric registry, so configs name metrics (PaddleVideo's `metrics: {name: ...}`):
//
//   metrics:
//     name: youtube8m
//     num_classes: 3862
//     top_k: 20
//
// Registered: accuracy (top-k), confusion, multi_view_accuracy, youtube8m; and the text metrics
// prf, chunk_f1, ranking (MRR/MAP) and masked_lm (accuracy, perplexity). A task builds the
// metric its config names with make_metric(config, "metrics").
#include <memory>
#include <string>

#include "engine/registry/registry.h"
#include "engine/train/metric.h"

namespace oar::metrics {

Registry<Metric>& metrics();

// The metric named by `<section>.name`, validated against its schema, owned by the caller (what
// Task::metrics() returns). ConfigError for an unknown name or a bad key.
std::unique_ptr<Metric> make_metric(Config& config, const std::string& section);

// Registers this library's metrics. Idempotent; called by the app (and tests) at start-up.
void register_components();

}  // namespace oar::metrics
