#pragma once

namespace oar::vision {

// Registers vision models and tasks (and the readers they use). Idempotent.
void register_components();

}  // namespace oar::vision
