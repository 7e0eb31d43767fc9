#pragma once

namespace oar::nlp {

// Registers the text models (bert), tasks (text_classification) and readers (tsv). Idempotent.
void register_components();

}  // namespace oar::nlp
