// Tokenizer benchmark, oar side: encode throughput (MB/s of UTF-8 input) of BertTokenizer (uncased)
// on a corpus of one text a line, for each thread count given; ids of every 997th line go to a
// file so that bench/run_tokenizer can check them against Hugging Face's. Then, for each thread
// count, the streaming path of `oar text tokenize --ids` (read the file in blocks, tokenize on the
// workers, format ids, write in order to a temp file) as rows named "oar text tokenize".
// Usage: oar_bench_tokenizer CORPUS VOCAB SAMPLE.jsonl THREADS...
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "nlp/text/line_pipeline.h"
#include "nlp/text/line_tokenizer.h"
#include "nlp/tokenizers/bert_tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: oar_bench_tokenizer CORPUS VOCAB SAMPLE.jsonl THREADS...\n";
    return 2;
  }
  try {
    std::ifstream in(argv[1], std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string data = ss.str();
    std::vector<std::string_view> lines;
    for (size_t pos = 0; pos < data.size();) {
      size_t nl = data.find('\n', pos);
      if (nl == std::string::npos) nl = data.size();
      lines.emplace_back(data.data() + pos, nl - pos);
      pos = nl + 1;
    }
    auto tok = oar::nlp::BertTokenizer::from_file(argv[2]);
    constexpr size_t kChunk = 4096;  // as the Python side, so memory stays bounded
    for (int a = 4; a < argc; ++a) {
      const size_t threads = size_t(std::stoul(argv[a]));
      size_t tokens = 0;
      double seconds = 0;
      std::ofstream sample;
      if (a == 4) sample.open(argv[3]);
      for (size_t begin = 0; begin < lines.size(); begin += kChunk) {
        const size_t n = std::min(kChunk, lines.size() - begin);
        auto t0 = std::chrono::steady_clock::now();
        auto enc = tok.encode_batch(std::span(lines).subspan(begin, n), threads);
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        for (size_t i = 0; i < n; ++i) {
          tokens += enc[i].ids.size();
          if (a == 4 && (begin + i) % 997 == 0) {
            sample << "{\"line\": " << begin + i << ", \"ids\": [";
            for (size_t k = 0; k < enc[i].ids.size(); ++k)
              sample << (k ? ", " : "") << enc[i].ids[k];
            sample << "]}\n";
          }
        }
      }
      std::printf(
          "{\"name\": \"oar\", \"threads\": %zu, \"bytes\": %zu, \"lines\": %zu, \"tokens\": %zu, "
          "\"seconds\": %.4f, \"mb_per_s\": %.3f}\n",
          threads, data.size(), lines.size(), tokens, seconds, double(data.size()) / 1e6 / seconds);
      std::fflush(stdout);
    }
    // The streaming tool: input read from the file again (page cache), output to a temp file.
    namespace tx = oar::nlp::text;
    tx::LineTokenizerOptions to;
    to.vocab = argv[2];
    to.ids = true;
    const tx::LineTokenizer line_tok(to);
    const auto out_path = std::filesystem::temp_directory_path() /
                          ("oar_bench_tokenize_" + std::to_string(::getpid()) + ".txt");
    for (int a = 4; a < argc; ++a) {
      const int threads = std::stoi(argv[a]);
      tx::LineReader reader({argv[1]}, tx::InvalidUtf8::replace);
      tx::Output out(out_path.string());
      auto t0 = std::chrono::steady_clock::now();
      tx::run_pipeline_to(
          reader, {threads, 256},
          [&](int, const tx::Line& line, std::string& s) {
            line_tok.tokenize(line.text, s);
            s += '\n';
          },
          out);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::filesystem::remove(out_path);
      std::printf(
          "{\"name\": \"oar text tokenize\", \"threads\": %d, \"bytes\": %zu, \"lines\": %zu, "
          "\"tokens\": 0, \"seconds\": %.4f, \"mb_per_s\": %.3f}\n",
          threads, data.size(), lines.size(), seconds, double(data.size()) / 1e6 / seconds);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::cerr << "oar_bench_tokenizer: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
