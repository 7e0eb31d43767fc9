#pragma once
// The metric registry, so configs name metrics (PaddleVideo's `metrics: {name: ...}`):
//
//   metrics:
//     name: youtube8m
//     num_classes: 3862
//     top_k: 20
//
// Registered: accuracy (top-k), confusion, multi_view_accuracy, youtube8m. A task builds the
// metrics its config names with metrics().create_from(config, "metrics").
#include "engine/registry/registry.h"
#include "engine/train/metric.h"

namespace oar::metrics {

Registry<Metric>& metrics();

// Registers this library's metrics. Idempotent; called by the app (and tests) at start-up.
void register_components();

}  // namespace oar::metrics
