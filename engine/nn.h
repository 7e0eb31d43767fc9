#pragma once
// The nn modules, for model code.
#include "engine/nn/attention.h"
#include "engine/nn/batch_norm.h"
#include "engine/nn/conv.h"
#include "engine/nn/dropout.h"
#include "engine/nn/embedding.h"
#include "engine/nn/group_norm.h"
#include "engine/nn/init.h"
#include "engine/nn/layer_norm.h"
#include "engine/nn/linear.h"
#include "engine/nn/module.h"
#include "engine/nn/rnn.h"
#include "engine/nn/sequential.h"
