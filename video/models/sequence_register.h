#pragma once

namespace oar::video {

// Registers the feature-sequence models (attention_lstm, attention_cluster, nextvlad) in the
// model registry, each with its schema. Idempotent.
void register_sequence_models();

}  // namespace oar::video
