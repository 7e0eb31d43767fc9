#!/usr/bin/env python3
"""Golden values for tests/metrics/multilabel_test.cpp.

A line-by-line port (numpy only) of the YouTube-8M starter code's evaluator that PaddleVideo
ships as metrics/youtube8m/{eval_util,average_precision_calculator,
mean_average_precision_calculator}.py: calculate_hit_at_one,
calculate_precision_at_equal_recall_rate, top_k_by_class, AveragePrecisionCalculator (heap,
tie shuffle with random.seed(0)), MeanAveragePrecisionCalculator and EvaluationMetrics.
It shares no code with the C++ implementation. Scores are distinct float32 values, so the tie
shuffle cannot matter.

    python3 make_multilabel_golden.py > multilabel_golden.json
"""
import heapq
import json
import random

import numpy


# ---- average_precision_calculator.py ----
class AveragePrecisionCalculator(object):
    def __init__(self, top_n=None):
        self._top_n = top_n
        self._total_positives = 0
        self._heap = []

    @property
    def heap_size(self):
        return len(self._heap)

    def accumulate(self, predictions, actuals, num_positives=None):
        if num_positives is None:
            num_positives = numpy.size(numpy.where(numpy.array(actuals) > 0))
        self._total_positives += num_positives
        topk = self._top_n
        heap = self._heap
        for i in range(numpy.size(predictions)):
            if topk is None or len(heap) < topk:
                heapq.heappush(heap, (predictions[i], actuals[i]))
            elif predictions[i] > heap[0][0]:
                heapq.heappop(heap)
                heapq.heappush(heap, (predictions[i], actuals[i]))

    def peek_ap_at_n(self):
        if self.heap_size <= 0:
            return 0
        predlists = numpy.array(list(zip(*self._heap)))
        return self.ap_at_n(predlists[0], predlists[1], n=self._top_n,
                            total_num_positives=self._total_positives)

    @staticmethod
    def ap_at_n(predictions, actuals, n=20, total_num_positives=None):
        ap = 0.0
        predictions = numpy.array(predictions)
        actuals = numpy.array(actuals)
        predictions, actuals = AveragePrecisionCalculator._shuffle(predictions, actuals)
        sortidx = sorted(range(len(predictions)), key=lambda k: predictions[k], reverse=True)
        if total_num_positives is None:
            numpos = numpy.size(numpy.where(actuals > 0))
        else:
            numpos = total_num_positives
        if numpos == 0:
            return 0
        if n is not None:
            numpos = min(numpos, n)
        delta_recall = 1.0 / numpos
        poscount = 0.0
        r = len(sortidx)
        if n is not None:
            r = min(r, n)
        for i in range(r):
            if actuals[sortidx[i]] > 0:
                poscount += 1
                ap += poscount / (i + 1) * delta_recall
        return ap

    @staticmethod
    def _shuffle(predictions, actuals):
        random.seed(0)
        suffidx = random.sample(range(len(predictions)), len(predictions))
        return predictions[suffidx], actuals[suffidx]


# ---- mean_average_precision_calculator.py ----
class MeanAveragePrecisionCalculator(object):
    def __init__(self, num_class):
        self._ap_calculators = [AveragePrecisionCalculator() for _ in range(num_class)]
        self._num_class = num_class

    def accumulate(self, predictions, actuals, num_positives=None):
        if not num_positives:
            num_positives = {}
        calculators = self._ap_calculators
        for i in range(len(predictions)):
            calculators[i].accumulate(predictions[i], actuals[i],
                                      num_positives[i] if i in range(len(num_positives)) else None)

    def peek_map_at_n(self):
        return [self._ap_calculators[i].peek_ap_at_n() for i in range(self._num_class)]


# ---- eval_util.py ----
def flatten(l):
    return [item for sublist in l for item in sublist]


def calculate_hit_at_one(predictions, actuals):
    top_prediction = numpy.argmax(predictions, 1)
    hits = actuals[numpy.arange(actuals.shape[0]), top_prediction]
    return numpy.average(hits)


def calculate_precision_at_equal_recall_rate(predictions, actuals):
    aggregated_precision = 0.0
    num_videos = actuals.shape[0]
    for row in numpy.arange(num_videos):
        num_labels = int(numpy.sum(actuals[row]))
        top_indices = numpy.argpartition(predictions[row], -num_labels)[-num_labels:]
        item_precision = 0.0
        for label_index in top_indices:
            if predictions[row][label_index] > 0:
                item_precision += actuals[row][label_index]
        item_precision /= top_indices.size
        aggregated_precision += item_precision
    aggregated_precision /= num_videos
    return aggregated_precision


def top_k_triplets(predictions, labels, k=20):
    m = len(predictions)
    k = min(k, m)
    indices = numpy.argpartition(predictions, -k)[-k:]
    return [(index, predictions[index], labels[index]) for index in indices]


def top_k_by_class(predictions, labels, k=20):
    k = min(k, predictions.shape[1])
    num_classes = predictions.shape[1]
    prediction_triplets = []
    for video_index in range(predictions.shape[0]):
        prediction_triplets.extend(top_k_triplets(predictions[video_index], labels[video_index], k))
    out_predictions = [[] for _ in range(num_classes)]
    out_labels = [[] for _ in range(num_classes)]
    for triplet in prediction_triplets:
        out_predictions[triplet[0]].append(triplet[1])
        out_labels[triplet[0]].append(triplet[2])
    out_true_positives = [numpy.sum(labels[:, i]) for i in range(num_classes)]
    return out_predictions, out_labels, out_true_positives


class EvaluationMetrics(object):
    def __init__(self, num_class, top_k):
        self.sum_hit_at_one = 0.0
        self.sum_perr = 0.0
        self.map_calculator = MeanAveragePrecisionCalculator(num_class)
        self.global_ap_calculator = AveragePrecisionCalculator()
        self.top_k = top_k
        self.num_examples = 0

    def accumulate(self, predictions, labels):
        batch_size = labels.shape[0]
        mean_hit_at_one = calculate_hit_at_one(predictions, labels)
        mean_perr = calculate_precision_at_equal_recall_rate(predictions, labels)
        sparse_predictions, sparse_labels, num_positives = top_k_by_class(
            predictions, labels, self.top_k)
        self.map_calculator.accumulate(sparse_predictions, sparse_labels, num_positives)
        self.global_ap_calculator.accumulate(flatten(sparse_predictions), flatten(sparse_labels),
                                             sum(num_positives))
        self.num_examples += batch_size
        self.sum_hit_at_one += mean_hit_at_one * batch_size
        self.sum_perr += mean_perr * batch_size

    def get(self):
        aps = self.map_calculator.peek_map_at_n()
        return {
            "hit_at_one": float(self.sum_hit_at_one / self.num_examples),
            "perr": float(self.sum_perr / self.num_examples),
            "gap": float(self.global_ap_calculator.peek_ap_at_n()),
            "map": float(numpy.mean(aps)),
            "aps": [float(a) for a in aps],
        }


def case(rng, n, c, top_k, batch, p_pos, shift=0.0):
    scores = rng.permutation(n * c).reshape(n, c).astype(numpy.float64)
    scores = (scores + rng.uniform(0.05, 0.95, size=(n, c))) / (n * c)  # distinct, in (0, 1)
    scores = scores.astype(numpy.float32)
    labels = (rng.uniform(size=(n, c)) < p_pos).astype(numpy.float32)
    labels[1, :] = 0  # a video without positives
    # make scores informative: positives tend to score higher
    scores = numpy.where(labels > 0, numpy.sqrt(scores), scores).astype(numpy.float32)
    scores = (scores - numpy.float32(shift)).astype(numpy.float32)  # shift: PERR skips scores <= 0
    m = EvaluationMetrics(c, top_k)
    for s in range(0, n, batch):  # in batches, as the evaluator is driven
        m.accumulate(scores[s:s + batch].astype(numpy.float64), labels[s:s + batch])
    out = m.get()
    out.update({"n": n, "c": c, "top_k": top_k, "batch": batch,
                "scores": [float(v) for v in scores.ravel()],
                "labels": [float(v) for v in labels.ravel()]})
    return out


def main():
    rng = numpy.random.default_rng(20261127)
    cases = [case(rng, 30, 10, 3, 7, 0.25), case(rng, 25, 40, 20, 10, 0.08),
             case(rng, 12, 6, 20, 12, 0.4, shift=0.6)]
    print(json.dumps({"source": "tests/metrics/golden/make_multilabel_golden.py",
                      "numpy": numpy.__version__, "cases": cases}))


if __name__ == "__main__":
    main()
