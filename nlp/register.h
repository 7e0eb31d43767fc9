#pragma once

namespace oar::nlp {

// Registers the text models (bert, lac), tasks (text_classification, token_classification,
// span_extraction, text_matching) and readers (tsv, msra_ner, conll, squad, query_groups).
// Idempotent.
void register_components();

}  // namespace oar::nlp
