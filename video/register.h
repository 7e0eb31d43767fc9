#pragma once

namespace oar::video {

// Registers the frame-based video classifiers (tsn, tsm, stnet, nonlocal). Idempotent.
void register_components();

}  // namespace oar::video
