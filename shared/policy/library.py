"""The modules the allowed libraries hold under public names: generated, do not edit.

Written by `python -m tests.unit.test_policy_exposure` after importing every public submodule;
tests/unit/test_policy_exposure.py fails when the installed libraries hold a module this table
does not know. paths.py reads it to tell a module from other values.

Libraries: torch 2.13.0+cpu, numpy 2.4.6, triton 3.9.0.
"""

# Modules reachable from the allowed ones through public attributes, by the name each gives itself.
MODULES: frozenset[str] = frozenset(
    """
abc
collections
collections.abc
contextlib
copy
dataclasses
enum
functools
itertools
math
numbers
numpy
numpy.char
numpy.core
numpy.core.arrayprint
numpy.core.defchararray
numpy.core.einsumfunc
numpy.core.fromnumeric
numpy.core.function_base
numpy.core.getlimits
numpy.core.multiarray
numpy.core.numeric
numpy.core.numerictypes
numpy.core.overrides
numpy.core.shape_base
numpy.core.umath
numpy.dtypes
numpy.exceptions
numpy.fft
numpy.fft.tests
numpy.lib
numpy.lib.array_utils
numpy.lib.introspect
numpy.lib.mixins
numpy.lib.recfunctions
numpy.lib.scimath
numpy.lib.tests
numpy.lib.user_array
numpy.linalg
numpy.linalg.lapack_lite
numpy.linalg.tests
numpy.ma
numpy.ma.core
numpy.ma.extras
numpy.ma.tests
numpy.ma.testutils
numpy.matlib
numpy.matrixlib
numpy.matrixlib.defmatrix
numpy.matrixlib.tests
numpy.polynomial
numpy.polynomial.chebyshev
numpy.polynomial.hermite
numpy.polynomial.hermite_e
numpy.polynomial.laguerre
numpy.polynomial.legendre
numpy.polynomial.polynomial
numpy.polynomial.polyutils
numpy.polynomial.tests
numpy.random
numpy.random.bit_generator
numpy.random.mtrand
numpy.random.tests
numpy.random.tests.data
numpy.strings
numpy.tests
numpy.typing
numpy.typing.mypy_plugin
numpy.typing.tests
numpy.version
operator
random
shared.kernels
shared.kernels.cross_entropy
shared.kernels.dispatch
shared.kernels.reference
shared.kernels.rmsnorm
shared.kernels.rotary
statistics
time
torch
torch.accelerator
torch.accelerator.graphs
torch.accelerator.memory
torch.amp
torch.amp.autocast_mode
torch.amp.grad_scaler
torch.ao
torch.ao.nn
torch.ao.nn.intrinsic
torch.ao.nn.intrinsic.modules
torch.ao.nn.intrinsic.modules.fused
torch.ao.nn.intrinsic.qat
torch.ao.nn.intrinsic.qat.modules
torch.ao.nn.intrinsic.qat.modules.conv_fused
torch.ao.nn.intrinsic.qat.modules.linear_fused
torch.ao.nn.intrinsic.qat.modules.linear_relu
torch.ao.nn.intrinsic.quantized
torch.ao.nn.intrinsic.quantized.dynamic
torch.ao.nn.intrinsic.quantized.dynamic.modules
torch.ao.nn.intrinsic.quantized.dynamic.modules.linear_relu
torch.ao.nn.intrinsic.quantized.modules
torch.ao.nn.intrinsic.quantized.modules.bn_relu
torch.ao.nn.intrinsic.quantized.modules.conv_add
torch.ao.nn.intrinsic.quantized.modules.conv_relu
torch.ao.nn.intrinsic.quantized.modules.linear_relu
torch.ao.nn.qat
torch.ao.nn.qat.dynamic
torch.ao.nn.qat.dynamic.modules
torch.ao.nn.qat.dynamic.modules.linear
torch.ao.nn.qat.modules
torch.ao.nn.qat.modules.conv
torch.ao.nn.qat.modules.embedding_ops
torch.ao.nn.qat.modules.linear
torch.ao.nn.quantizable
torch.ao.nn.quantizable.modules
torch.ao.nn.quantizable.modules.activation
torch.ao.nn.quantizable.modules.rnn
torch.ao.nn.quantized
torch.ao.nn.quantized.dynamic
torch.ao.nn.quantized.dynamic.modules
torch.ao.nn.quantized.dynamic.modules.conv
torch.ao.nn.quantized.dynamic.modules.linear
torch.ao.nn.quantized.dynamic.modules.rnn
torch.ao.nn.quantized.functional
torch.ao.nn.quantized.modules
torch.ao.nn.quantized.modules.activation
torch.ao.nn.quantized.modules.batchnorm
torch.ao.nn.quantized.modules.conv
torch.ao.nn.quantized.modules.dropout
torch.ao.nn.quantized.modules.embedding_ops
torch.ao.nn.quantized.modules.functional_modules
torch.ao.nn.quantized.modules.linear
torch.ao.nn.quantized.modules.normalization
torch.ao.nn.quantized.modules.rnn
torch.ao.nn.quantized.modules.utils
torch.ao.nn.quantized.reference
torch.ao.nn.quantized.reference.modules
torch.ao.nn.quantized.reference.modules.conv
torch.ao.nn.quantized.reference.modules.linear
torch.ao.nn.quantized.reference.modules.rnn
torch.ao.nn.quantized.reference.modules.sparse
torch.ao.nn.quantized.reference.modules.utils
torch.ao.nn.sparse
torch.ao.nn.sparse.quantized
torch.ao.nn.sparse.quantized.dynamic
torch.ao.nn.sparse.quantized.dynamic.linear
torch.ao.nn.sparse.quantized.linear
torch.ao.nn.sparse.quantized.utils
torch.ao.ns
torch.ao.ns.fx
torch.ao.ns.fx.graph_matcher
torch.ao.ns.fx.graph_passes
torch.ao.ns.fx.mappings
torch.ao.ns.fx.n_shadows_utils
torch.ao.ns.fx.ns_types
torch.ao.ns.fx.pattern_utils
torch.ao.ns.fx.qconfig_multi_mapping
torch.ao.ns.fx.utils
torch.ao.ns.fx.weight_utils
torch.ao.pruning
torch.ao.pruning.scheduler
torch.ao.pruning.scheduler.base_scheduler
torch.ao.pruning.scheduler.cubic_scheduler
torch.ao.pruning.scheduler.lambda_scheduler
torch.ao.pruning.sparsifier
torch.ao.pruning.sparsifier.base_sparsifier
torch.ao.pruning.sparsifier.nearly_diagonal_sparsifier
torch.ao.pruning.sparsifier.utils
torch.ao.pruning.sparsifier.weight_norm_sparsifier
torch.ao.quantization
torch.ao.quantization.backend_config
torch.ao.quantization.backend_config.backend_config
torch.ao.quantization.backend_config.executorch
torch.ao.quantization.backend_config.fbgemm
torch.ao.quantization.backend_config.native
torch.ao.quantization.backend_config.onednn
torch.ao.quantization.backend_config.qnnpack
torch.ao.quantization.backend_config.tensorrt
torch.ao.quantization.backend_config.utils
torch.ao.quantization.backend_config.x86
torch.ao.quantization.fake_quantize
torch.ao.quantization.fuser_method_mappings
torch.ao.quantization.fx
torch.ao.quantization.fx.custom_config
torch.ao.quantization.fx.fuse_handler
torch.ao.quantization.fx.graph_module
torch.ao.quantization.fx.lower_to_fbgemm
torch.ao.quantization.fx.lower_to_qnnpack
torch.ao.quantization.fx.lstm_utils
torch.ao.quantization.fx.match_utils
torch.ao.quantization.fx.pattern_utils
torch.ao.quantization.fx.qconfig_mapping_utils
torch.ao.quantization.fx.quantize_handler
torch.ao.quantization.fx.tracer
torch.ao.quantization.fx.utils
torch.ao.quantization.observer
torch.ao.quantization.qconfig
torch.ao.quantization.qconfig_mapping
torch.ao.quantization.quant_type
torch.ao.quantization.quantization_mappings
torch.ao.quantization.quantize_fx
torch.ao.quantization.stubs
torch.ao.quantization.utils
torch.autograd
torch.autograd.anomaly_mode
torch.autograd.forward_ad
torch.autograd.function
torch.autograd.functional
torch.autograd.grad_mode
torch.autograd.graph
torch.autograd.profiler_legacy
torch.autograd.profiler_util
torch.backends
torch.backends.cpu
torch.backends.cuda
torch.backends.cudnn
torch.backends.cusparselt
torch.backends.kleidiai
torch.backends.mha
torch.backends.miopen
torch.backends.mkl
torch.backends.mkldnn
torch.backends.mps
torch.backends.nnpack
torch.backends.openmp
torch.backends.opt_einsum
torch.backends.python_native
torch.backends.quantized
torch.backends.xeon
torch.backends.xeon.run_cpu
torch.backends.xnnpack
torch.classes
torch.compiler
torch.compiler.config
torch.contrib
torch.cpu
torch.cpu.amp
torch.cpu.amp.autocast_mode
torch.cpu.amp.grad_scaler
torch.cuda
torch.cuda.amp
torch.cuda.amp.autocast_mode
torch.cuda.amp.common
torch.cuda.amp.grad_scaler
torch.cuda.comm
torch.cuda.gds
torch.cuda.graphs
torch.cuda.green_contexts
torch.cuda.memory
torch.cuda.nccl
torch.cuda.nvtx
torch.cuda.profiler
torch.cuda.random
torch.cuda.sparse
torch.cuda.streams
torch.distributions
torch.distributions.bernoulli
torch.distributions.beta
torch.distributions.binomial
torch.distributions.categorical
torch.distributions.cauchy
torch.distributions.chi2
torch.distributions.constraint_registry
torch.distributions.constraints
torch.distributions.continuous_bernoulli
torch.distributions.dirichlet
torch.distributions.distribution
torch.distributions.exp_family
torch.distributions.exponential
torch.distributions.fishersnedecor
torch.distributions.gamma
torch.distributions.generalized_pareto
torch.distributions.geometric
torch.distributions.gumbel
torch.distributions.half_cauchy
torch.distributions.half_normal
torch.distributions.independent
torch.distributions.inverse_gamma
torch.distributions.kl
torch.distributions.kumaraswamy
torch.distributions.laplace
torch.distributions.lkj_cholesky
torch.distributions.log_normal
torch.distributions.logistic_normal
torch.distributions.lowrank_multivariate_normal
torch.distributions.mixture_same_family
torch.distributions.multinomial
torch.distributions.multivariate_normal
torch.distributions.negative_binomial
torch.distributions.normal
torch.distributions.one_hot_categorical
torch.distributions.pareto
torch.distributions.poisson
torch.distributions.relaxed_bernoulli
torch.distributions.relaxed_categorical
torch.distributions.studentT
torch.distributions.transformed_distribution
torch.distributions.transforms
torch.distributions.uniform
torch.distributions.utils
torch.distributions.von_mises
torch.distributions.weibull
torch.distributions.wishart
torch.fft
torch.func
torch.functional
torch.futures
torch.jit
torch.jit.generate_bytecode
torch.jit.mobile
torch.jit.quantized
torch.jit.supported_ops
torch.jit.unsupported_tensor_ops
torch.library
torch.linalg
torch.masked
torch.masked.maskedtensor
torch.masked.maskedtensor.binary
torch.masked.maskedtensor.core
torch.masked.maskedtensor.creation
torch.masked.maskedtensor.passthrough
torch.masked.maskedtensor.reductions
torch.masked.maskedtensor.unary
torch.monitor
torch.mps
torch.mps.event
torch.mps.profiler
torch.mtia
torch.mtia.memory
torch.mtia.mtia_graph
torch.nativert
torch.nativert.backends
torch.nested
torch.nn
torch.nn.attention
torch.nn.attention.bias
torch.nn.attention.experimental
torch.nn.attention.flex_attention
torch.nn.attention.varlen
torch.nn.backends
torch.nn.backends.thnn
torch.nn.common_types
torch.nn.cpp
torch.nn.functional
torch.nn.grad
torch.nn.init
torch.nn.intrinsic
torch.nn.intrinsic.modules
torch.nn.intrinsic.modules.fused
torch.nn.intrinsic.qat
torch.nn.intrinsic.qat.modules
torch.nn.intrinsic.qat.modules.conv_fused
torch.nn.intrinsic.qat.modules.linear_fused
torch.nn.intrinsic.qat.modules.linear_relu
torch.nn.intrinsic.quantized
torch.nn.intrinsic.quantized.dynamic
torch.nn.intrinsic.quantized.dynamic.modules
torch.nn.intrinsic.quantized.dynamic.modules.linear_relu
torch.nn.intrinsic.quantized.modules
torch.nn.intrinsic.quantized.modules.bn_relu
torch.nn.intrinsic.quantized.modules.conv_relu
torch.nn.intrinsic.quantized.modules.linear_relu
torch.nn.modules
torch.nn.modules.activation
torch.nn.modules.adaptive
torch.nn.modules.batchnorm
torch.nn.modules.channelshuffle
torch.nn.modules.container
torch.nn.modules.conv
torch.nn.modules.distance
torch.nn.modules.dropout
torch.nn.modules.flatten
torch.nn.modules.fold
torch.nn.modules.instancenorm
torch.nn.modules.lazy
torch.nn.modules.linear
torch.nn.modules.linear_cross_entropy
torch.nn.modules.linear_cross_entropy_options
torch.nn.modules.loss
torch.nn.modules.module
torch.nn.modules.normalization
torch.nn.modules.padding
torch.nn.modules.pixelshuffle
torch.nn.modules.pooling
torch.nn.modules.rnn
torch.nn.modules.sparse
torch.nn.modules.transformer
torch.nn.modules.upsampling
torch.nn.modules.utils
torch.nn.parallel
torch.nn.parallel.comm
torch.nn.parallel.distributed
torch.nn.parallel.scatter_gather
torch.nn.parameter
torch.nn.qat
torch.nn.qat.dynamic
torch.nn.qat.dynamic.modules
torch.nn.qat.dynamic.modules.linear
torch.nn.qat.modules
torch.nn.qat.modules.conv
torch.nn.qat.modules.embedding_ops
torch.nn.qat.modules.linear
torch.nn.quantizable
torch.nn.quantizable.modules
torch.nn.quantizable.modules.activation
torch.nn.quantizable.modules.rnn
torch.nn.quantized
torch.nn.quantized.dynamic
torch.nn.quantized.dynamic.modules
torch.nn.quantized.dynamic.modules.conv
torch.nn.quantized.dynamic.modules.linear
torch.nn.quantized.dynamic.modules.rnn
torch.nn.quantized.functional
torch.nn.quantized.modules
torch.nn.quantized.modules.activation
torch.nn.quantized.modules.batchnorm
torch.nn.quantized.modules.conv
torch.nn.quantized.modules.dropout
torch.nn.quantized.modules.embedding_ops
torch.nn.quantized.modules.functional_modules
torch.nn.quantized.modules.linear
torch.nn.quantized.modules.normalization
torch.nn.quantized.modules.rnn
torch.nn.quantized.modules.utils
torch.nn.utils
torch.nn.utils.clip_grad
torch.nn.utils.convert_parameters
torch.nn.utils.fusion
torch.nn.utils.init
torch.nn.utils.memory_format
torch.nn.utils.parametrizations
torch.nn.utils.parametrize
torch.nn.utils.prune
torch.nn.utils.rnn
torch.nn.utils.stateless
torch.numa
torch.numa.binding
torch.ops
torch.ops.aten
torch.ops.c10d
torch.ops.c10d_functional
torch.ops.cplib
torch.ops.debug_mode_ops
torch.ops.export
torch.ops.flex_lib
torch.ops.fsdp
torch.ops.higher_order
torch.ops.inductor
torch.ops.mkl
torch.ops.mkldnn
torch.ops.onednn
torch.ops.onnx
torch.ops.onnx_symbolic
torch.ops.pippy
torch.ops.prim
torch.ops.profiler
torch.ops.quantized
torch.ops.quantized_decomposed
torch.ops.sparse
torch.ops.streams
torch.ops.symm_mem
torch.ops.torch_attn
torch.ops.torch_nn
torch.ops.tr_c10d
torch.optim
torch.optim.lr_scheduler
torch.optim.swa_utils
torch.quantization
torch.quantization.fake_quantize
torch.quantization.fuser_method_mappings
torch.quantization.fx
torch.quantization.fx.convert
torch.quantization.fx.fuse
torch.quantization.fx.fusion_patterns
torch.quantization.fx.graph_module
torch.quantization.fx.match_utils
torch.quantization.fx.pattern_utils
torch.quantization.fx.prepare
torch.quantization.fx.quantization_patterns
torch.quantization.fx.quantization_types
torch.quantization.fx.utils
torch.quantization.observer
torch.quantization.qconfig
torch.quantization.quant_type
torch.quantization.quantization_mappings
torch.quantization.quantize_fx
torch.quantization.stubs
torch.quantization.utils
torch.quasirandom
torch.random
torch.return_types
torch.signal
torch.signal.windows
torch.signal.windows.windows
torch.special
torch.storage
torch.testing
torch.torch_version
torch.types
torch.utils
torch.utils.checkpoint
torch.utils.dlpack
torch.utils.flop_counter
torch.utils.hooks
torch.version
triton
triton.errors
triton.language
triton.language.core
triton.language.extra
triton.language.extra.cuda
triton.language.extra.cuda.gdc
triton.language.extra.cuda.libdevice
triton.language.extra.cuda.utils
triton.language.extra.hip
triton.language.extra.hip.libdevice
triton.language.extra.libdevice
triton.language.math
triton.language.random
triton.language.semantic
triton.language.standard
triton.language.target_info
triton.profiler
triton.profiler.context
triton.profiler.data
triton.profiler.flags
triton.profiler.hooks
triton.profiler.hooks.hook
triton.profiler.hooks.instrumentation
triton.profiler.hooks.launch
triton.profiler.language
triton.profiler.metric
triton.profiler.mode
triton.profiler.proton
triton.profiler.specs
triton.testing
typing
warnings
""".split()
)

# `module.attribute` -> the module it holds, where that is not its own name: `numpy.emath` is
# numpy.lib.scimath, and the torch.nn modules hold torch.nn.functional as `F`.
MODULE_ALIASES: dict[str, str] = {
    written: target
    for written, target in (
        line.split()
        for line in """
numpy.emath numpy.lib.scimath
numpy.lib.mixins.um numpy._core.umath
numpy.lib.recfunctions.ma numpy.ma
numpy.lib.recfunctions.mrec numpy.ma.mrecords
numpy.lib.recfunctions.np numpy
numpy.ma.core.mu numpy._core.multiarray
numpy.ma.core.np numpy
numpy.ma.core.ntypes numpy._core.numerictypes
numpy.ma.core.umath numpy._core.umath
numpy.ma.extras.ma numpy.ma.core
numpy.ma.extras.np numpy
numpy.ma.testutils.np numpy
numpy.ma.testutils.umath numpy._core.umath
numpy.matlib.char numpy.char
numpy.matlib.core numpy.core
numpy.matlib.ctypeslib numpy.ctypeslib
numpy.matlib.dtypes numpy.dtypes
numpy.matlib.emath numpy.lib.scimath
numpy.matlib.exceptions numpy.exceptions
numpy.matlib.f2py numpy.f2py
numpy.matlib.fft numpy.fft
numpy.matlib.lib numpy.lib
numpy.matlib.linalg numpy.linalg
numpy.matlib.ma numpy.ma
numpy.matlib.np numpy
numpy.matlib.polynomial numpy.polynomial
numpy.matlib.random numpy.random
numpy.matlib.rec numpy.rec
numpy.matlib.strings numpy.strings
numpy.matlib.testing numpy.testing
numpy.matlib.typing numpy.typing
numpy.matrixlib.defmatrix.N numpy._core.numeric
numpy.polynomial.chebyshev.np numpy
numpy.polynomial.chebyshev.pu numpy.polynomial.polyutils
numpy.polynomial.hermite.np numpy
numpy.polynomial.hermite.pu numpy.polynomial.polyutils
numpy.polynomial.hermite_e.np numpy
numpy.polynomial.hermite_e.pu numpy.polynomial.polyutils
numpy.polynomial.laguerre.np numpy
numpy.polynomial.laguerre.pu numpy.polynomial.polyutils
numpy.polynomial.legendre.np numpy
numpy.polynomial.legendre.pu numpy.polynomial.polyutils
numpy.polynomial.polynomial.np numpy
numpy.polynomial.polynomial.pu numpy.polynomial.polyutils
numpy.polynomial.polyutils.np numpy
numpy.random.bit_generator.np numpy
numpy.random.mtrand.np numpy
numpy.typing.mypy_plugin.np numpy
shared.kernels.cross_entropy.np numpy
shared.kernels.cross_entropy.tl triton.language
shared.kernels.reference.F torch.nn.functional
shared.kernels.rmsnorm.np numpy
shared.kernels.rmsnorm.tl triton.language
shared.kernels.rotary.np numpy
shared.kernels.rotary.tl triton.language
torch.amp.autocast_mode.np numpy
torch.amp.grad_scaler.abc collections.abc
torch.ao.nn.intrinsic.qat.modules.conv_fused.F torch.nn.functional
torch.ao.nn.intrinsic.qat.modules.conv_fused.init torch.nn.init
torch.ao.nn.intrinsic.qat.modules.conv_fused.nn torch.nn
torch.ao.nn.intrinsic.qat.modules.conv_fused.nni torch.ao.nn.intrinsic
torch.ao.nn.intrinsic.qat.modules.conv_fused.nnqat torch.ao.nn.qat
torch.ao.nn.intrinsic.qat.modules.linear_fused.F torch.nn.functional
torch.ao.nn.intrinsic.qat.modules.linear_fused.init torch.nn.init
torch.ao.nn.intrinsic.qat.modules.linear_fused.nn torch.nn
torch.ao.nn.intrinsic.qat.modules.linear_fused.nni torch.ao.nn.intrinsic
torch.ao.nn.intrinsic.qat.modules.linear_relu.F torch.nn.functional
torch.ao.nn.intrinsic.qat.modules.linear_relu.nni torch.ao.nn.intrinsic
torch.ao.nn.intrinsic.qat.modules.linear_relu.nnqat torch.ao.nn.qat
torch.ao.nn.intrinsic.quantized.dynamic.modules.linear_relu.nni torch.ao.nn.intrinsic
torch.ao.nn.intrinsic.quantized.dynamic.modules.linear_relu.nnqd torch.ao.nn.quantized.dynamic
torch.ao.nn.intrinsic.quantized.modules.bn_relu.nnq torch.ao.nn.quantized
torch.ao.nn.intrinsic.quantized.modules.conv_add.F torch.nn.functional
torch.ao.nn.intrinsic.quantized.modules.conv_add.nnq torch.ao.nn.quantized
torch.ao.nn.intrinsic.quantized.modules.conv_relu.F torch.nn.functional
torch.ao.nn.intrinsic.quantized.modules.conv_relu.nnq torch.ao.nn.quantized
torch.ao.nn.intrinsic.quantized.modules.linear_relu.nni torch.ao.nn.intrinsic
torch.ao.nn.intrinsic.quantized.modules.linear_relu.nnq torch.ao.nn.quantized
torch.ao.nn.qat.modules.conv.nn torch.nn
torch.ao.nn.qat.modules.embedding_ops.F torch.nn.functional
torch.ao.nn.qat.modules.embedding_ops.nn torch.nn
torch.ao.nn.qat.modules.linear.F torch.nn.functional
torch.ao.nn.qat.modules.linear.nn torch.nn
torch.ao.nn.quantizable.modules.activation.F torch.nn.functional
torch.ao.nn.quantizable.modules.activation.nn torch.nn
torch.ao.nn.quantized.dynamic.modules.conv.F torch.nn.functional
torch.ao.nn.quantized.dynamic.modules.conv.nn torch.nn
torch.ao.nn.quantized.dynamic.modules.conv.nnq torch.ao.nn.quantized
torch.ao.nn.quantized.dynamic.modules.conv.ops torch.ops
torch.ao.nn.quantized.dynamic.modules.linear.nni torch.ao.nn.intrinsic
torch.ao.nn.quantized.dynamic.modules.linear.nnq torch.ao.nn.quantized
torch.ao.nn.quantized.dynamic.modules.rnn.nn torch.nn
torch.ao.nn.quantized.modules.batchnorm.nni torch.ao.nn.intrinsic
torch.ao.nn.quantized.modules.conv.F torch.nn.functional
torch.ao.nn.quantized.modules.conv.nn torch.nn
torch.ao.nn.quantized.modules.conv.nni torch.ao.nn.intrinsic
torch.ao.nn.quantized.modules.conv.nniqat torch.ao.nn.intrinsic.qat
torch.ao.nn.quantized.modules.conv.ops torch.ops
torch.ao.nn.quantized.modules.embedding_ops.nn torch.nn
torch.ao.nn.quantized.modules.functional_modules.ops torch.ops
torch.ao.nn.quantized.modules.linear.nn torch.nn
torch.ao.nn.quantized.modules.linear.nni torch.ao.nn.intrinsic
torch.ao.nn.quantized.modules.linear.nniqat torch.ao.nn.intrinsic.qat
torch.ao.nn.quantized.reference.modules.conv.F torch.nn.functional
torch.ao.nn.quantized.reference.modules.conv.nn torch.nn
torch.ao.nn.quantized.reference.modules.linear.F torch.nn.functional
torch.ao.nn.quantized.reference.modules.linear.nn torch.nn
torch.ao.nn.quantized.reference.modules.rnn.nn torch.nn
torch.ao.nn.quantized.reference.modules.sparse.F torch.nn.functional
torch.ao.nn.quantized.reference.modules.sparse.nn torch.nn
torch.ao.nn.sparse.quantized.dynamic.linear.linear torch.ao.nn.sparse.quantized.linear
torch.ao.nn.sparse.quantized.dynamic.linear.nni torch.ao.nn.intrinsic
torch.ao.ns.fx.graph_matcher.toq torch.ops.quantized
torch.ao.ns.fx.mappings.F torch.nn.functional
torch.ao.ns.fx.mappings.nn torch.nn
torch.ao.ns.fx.mappings.nni torch.ao.nn.intrinsic
torch.ao.ns.fx.mappings.nniq torch.ao.nn.intrinsic.quantized
torch.ao.ns.fx.mappings.nniqat torch.ao.nn.intrinsic.qat
torch.ao.ns.fx.mappings.nniqd torch.ao.nn.intrinsic.quantized.dynamic
torch.ao.ns.fx.mappings.nnq torch.ao.nn.quantized
torch.ao.ns.fx.mappings.nnqat torch.ao.nn.qat
torch.ao.ns.fx.mappings.nnqatd torch.ao.nn.qat.dynamic
torch.ao.ns.fx.mappings.nnqd torch.ao.nn.quantized.dynamic
torch.ao.ns.fx.mappings.quantization_mappings torch.ao.quantization.quantization_mappings
torch.ao.ns.fx.mappings.toq torch.ops.quantized
torch.ao.ns.fx.pattern_utils.F torch.nn.functional
torch.ao.ns.fx.pattern_utils.nn torch.nn
torch.ao.ns.fx.pattern_utils.toq torch.ops.quantized
torch.ao.ns.fx.utils.nn torch.nn
torch.ao.ns.fx.utils.nniq torch.ao.nn.intrinsic.quantized
torch.ao.ns.fx.utils.nnq torch.ao.nn.quantized
torch.ao.ns.fx.utils.toq torch.ops.quantized
torch.ao.ns.fx.weight_utils.F torch.nn.functional
torch.ao.ns.fx.weight_utils.nn torch.nn
torch.ao.ns.fx.weight_utils.nni torch.ao.nn.intrinsic
torch.ao.ns.fx.weight_utils.nniq torch.ao.nn.intrinsic.quantized
torch.ao.ns.fx.weight_utils.nniqat torch.ao.nn.intrinsic.qat
torch.ao.ns.fx.weight_utils.nnq torch.ao.nn.quantized
torch.ao.ns.fx.weight_utils.nnqat torch.ao.nn.qat
torch.ao.ns.fx.weight_utils.nnqd torch.ao.nn.quantized.dynamic
torch.ao.ns.fx.weight_utils.toq torch.ops.quantized
torch.ao.pruning.sparsifier.base_sparsifier.nn torch.nn
torch.ao.pruning.sparsifier.base_sparsifier.parametrize torch.nn.utils.parametrize
torch.ao.pruning.sparsifier.nearly_diagonal_sparsifier.base_sparsifier torch.ao.pruning.sparsifier.base_sparsifier
torch.ao.pruning.sparsifier.utils.nn torch.nn
torch.ao.pruning.sparsifier.weight_norm_sparsifier.F torch.nn.functional
torch.ao.quantization.backend_config.executorch.F torch.nn.functional
torch.ao.quantization.backend_config.executorch.nn torch.nn
torch.ao.quantization.backend_config.executorch.nnqat torch.ao.nn.qat
torch.ao.quantization.backend_config.executorch.nnqr torch.ao.nn.quantized.reference
torch.ao.quantization.backend_config.onednn.F torch.nn.functional
torch.ao.quantization.backend_config.onednn.nn torch.nn
torch.ao.quantization.backend_config.onednn.nni torch.ao.nn.intrinsic
torch.ao.quantization.backend_config.onednn.nnqr torch.ao.nn.quantized.reference
torch.ao.quantization.backend_config.utils.F torch.nn.functional
torch.ao.quantization.backend_config.utils.nn torch.nn
torch.ao.quantization.fuser_method_mappings.nn torch.nn
torch.ao.quantization.fuser_method_mappings.nni torch.ao.nn.intrinsic
torch.ao.quantization.fx.utils.nn torch.nn
torch.ao.quantization.observer.nn torch.nn
torch.ao.quantization.qconfig.nn torch.nn
torch.ao.quantization.quantization_mappings.F torch.nn.functional
torch.ao.quantization.quantization_mappings.ao_nn torch.ao.nn
torch.ao.quantization.quantization_mappings.nn torch.nn
torch.ao.quantization.quantization_mappings.nni torch.ao.nn.intrinsic
torch.ao.quantization.quantization_mappings.nniq torch.ao.nn.intrinsic.quantized
torch.ao.quantization.quantization_mappings.nniqat torch.ao.nn.intrinsic.qat
torch.ao.quantization.quantization_mappings.nniqd torch.ao.nn.intrinsic.quantized.dynamic
torch.ao.quantization.quantization_mappings.nnq torch.ao.nn.quantized
torch.ao.quantization.quantization_mappings.nnqat torch.ao.nn.qat
torch.ao.quantization.quantization_mappings.nnqatd torch.ao.nn.qat.dynamic
torch.ao.quantization.quantization_mappings.nnqd torch.ao.nn.quantized.dynamic
torch.ao.quantization.quantization_mappings.nnqr torch.ao.nn.quantized.reference
torch.ao.quantization.stubs.nn torch.nn
torch.autograd.function.hooks torch.utils.hooks
torch.autograd.functional.fwAD torch.autograd.forward_ad
torch.backends.cudnn.m torch.backends.cudnn
torch.backends.m torch.backends
torch.backends.miopen.m torch.backends.miopen
torch.backends.mkldnn.m torch.backends.mkldnn
torch.backends.opt_einsum.m torch.backends.opt_einsum
torch.backends.python_native.m torch.backends.python_native
torch.backends.quantized.m torch.backends.quantized
torch.backends.xnnpack.m torch.backends.xnnpack
torch.cpp torch._C.cpp
torch.distributions.bernoulli.constraints torch.distributions.constraints
torch.distributions.beta.constraints torch.distributions.constraints
torch.distributions.binomial.constraints torch.distributions.constraints
torch.distributions.categorical.constraints torch.distributions.constraints
torch.distributions.cauchy.constraints torch.distributions.constraints
torch.distributions.chi2.constraints torch.distributions.constraints
torch.distributions.constraint_registry.constraints torch.distributions.constraints
torch.distributions.constraint_registry.transforms torch.distributions.transforms
torch.distributions.continuous_bernoulli.constraints torch.distributions.constraints
torch.distributions.dirichlet.constraints torch.distributions.constraints
torch.distributions.distribution.constraints torch.distributions.constraints
torch.distributions.exponential.constraints torch.distributions.constraints
torch.distributions.fishersnedecor.constraints torch.distributions.constraints
torch.distributions.gamma.constraints torch.distributions.constraints
torch.distributions.generalized_pareto.constraints torch.distributions.constraints
torch.distributions.geometric.constraints torch.distributions.constraints
torch.distributions.gumbel.constraints torch.distributions.constraints
torch.distributions.half_cauchy.constraints torch.distributions.constraints
torch.distributions.half_normal.constraints torch.distributions.constraints
torch.distributions.independent.constraints torch.distributions.constraints
torch.distributions.inverse_gamma.constraints torch.distributions.constraints
torch.distributions.kumaraswamy.constraints torch.distributions.constraints
torch.distributions.laplace.constraints torch.distributions.constraints
torch.distributions.lkj_cholesky.constraints torch.distributions.constraints
torch.distributions.log_normal.constraints torch.distributions.constraints
torch.distributions.logistic_normal.constraints torch.distributions.constraints
torch.distributions.lowrank_multivariate_normal.constraints torch.distributions.constraints
torch.distributions.mixture_same_family.constraints torch.distributions.constraints
torch.distributions.multinomial.constraints torch.distributions.constraints
torch.distributions.multivariate_normal.constraints torch.distributions.constraints
torch.distributions.negative_binomial.F torch.nn.functional
torch.distributions.negative_binomial.constraints torch.distributions.constraints
torch.distributions.normal.constraints torch.distributions.constraints
torch.distributions.one_hot_categorical.constraints torch.distributions.constraints
torch.distributions.pareto.constraints torch.distributions.constraints
torch.distributions.poisson.constraints torch.distributions.constraints
torch.distributions.relaxed_bernoulli.constraints torch.distributions.constraints
torch.distributions.relaxed_categorical.constraints torch.distributions.constraints
torch.distributions.studentT.constraints torch.distributions.constraints
torch.distributions.transformed_distribution.constraints torch.distributions.constraints
torch.distributions.transforms.F torch.nn.functional
torch.distributions.transforms.constraints torch.distributions.constraints
torch.distributions.uniform.constraints torch.distributions.constraints
torch.distributions.utils.F torch.nn.functional
torch.distributions.von_mises.constraints torch.distributions.constraints
torch.distributions.weibull.constraints torch.distributions.constraints
torch.distributions.wishart.constraints torch.distributions.constraints
torch.functional.F torch.nn.functional
torch.nested.F torch.nn.functional
torch.nn.attention.bias.F torch.nn.functional
torch.nn.cpp.nn torch.nn
torch.nn.functional.grad torch.nn.grad
torch.nn.functional.np numpy
torch.nn.modules.activation.F torch.nn.functional
torch.nn.modules.adaptive.F torch.nn.functional
torch.nn.modules.batchnorm.F torch.nn.functional
torch.nn.modules.batchnorm.init torch.nn.init
torch.nn.modules.channelshuffle.F torch.nn.functional
torch.nn.modules.container.container_abcs collections.abc
torch.nn.modules.conv.F torch.nn.functional
torch.nn.modules.conv.init torch.nn.init
torch.nn.modules.distance.F torch.nn.functional
torch.nn.modules.dropout.F torch.nn.functional
torch.nn.modules.fold.F torch.nn.functional
torch.nn.modules.instancenorm.F torch.nn.functional
torch.nn.modules.linear.F torch.nn.functional
torch.nn.modules.linear.init torch.nn.init
torch.nn.modules.loss.F torch.nn.functional
torch.nn.modules.normalization.F torch.nn.functional
torch.nn.modules.normalization.init torch.nn.init
torch.nn.modules.padding.F torch.nn.functional
torch.nn.modules.pixelshuffle.F torch.nn.functional
torch.nn.modules.pooling.F torch.nn.functional
torch.nn.modules.rnn.init torch.nn.init
torch.nn.modules.sparse.F torch.nn.functional
torch.nn.modules.sparse.init torch.nn.init
torch.nn.modules.transformer.F torch.nn.functional
torch.nn.modules.upsampling.F torch.nn.functional
torch.nn.parallel.comm.nccl torch.cuda.nccl
torch.nn.parallel.distributed.dist torch.distributed
torch.nn.quantized.dynamic.modules torch.ao.nn.quantized.dynamic.modules
torch.nn.quantized.modules.activation torch.ao.nn.quantized.modules.activation
torch.nn.quantized.modules.batchnorm torch.ao.nn.quantized.modules.batchnorm
torch.nn.quantized.modules.conv torch.ao.nn.quantized.modules.conv
torch.nn.quantized.modules.dropout torch.ao.nn.quantized.modules.dropout
torch.nn.quantized.modules.embedding_ops torch.ao.nn.quantized.modules.embedding_ops
torch.nn.quantized.modules.functional_modules torch.ao.nn.quantized.modules.functional_modules
torch.nn.quantized.modules.linear torch.ao.nn.quantized.modules.linear
torch.nn.quantized.modules.normalization torch.ao.nn.quantized.modules.normalization
torch.nn.quantized.modules.rnn torch.ao.nn.quantized.modules.rnn
torch.nn.quantized.modules.utils torch.ao.nn.quantized.modules.utils
torch.nn.utils.parametrizations.F torch.nn.functional
torch.nn.utils.parametrizations.parametrize torch.nn.utils.parametrize
torch.return_types.return_types torch._C._return_types
torch.storage.np numpy
torch.utils.checkpoint.fx_traceback torch.fx.traceback
torch.utils.flop_counter.aten torch.ops.aten
torch.windows torch.signal.windows
triton.language.core.ir triton._C.libtriton.ir
triton.language.core.knobs triton.knobs
triton.language.extra.cuda.gdc.core triton.language.core
triton.language.extra.cuda.libdevice.core triton.language.core
triton.language.extra.cuda.utils.core triton.language.core
triton.language.extra.hip.libdevice.core triton.language.core
triton.language.extra.module triton.language.extra.hip
triton.language.math.core triton.language.core
triton.language.np numpy
triton.language.random.math triton.language.math
triton.language.random.np numpy
triton.language.random.tl triton.language.core
triton.language.semantic.ir triton._C.libtriton.ir
triton.language.semantic.tl triton.language.core
triton.language.standard.core triton.language.core
triton.language.standard.math triton.language.math
triton.language.standard.np numpy
triton.language.standard.tl triton.language
triton.language.tl triton.language
triton.profiler.context.libproton triton._C.libproton.proton
triton.profiler.data.libproton triton._C.libproton.proton
triton.profiler.hooks.hook.knobs triton.knobs
triton.profiler.hooks.instrumentation.libproton triton._C.libproton.proton
triton.profiler.hooks.instrumentation.mode triton.profiler.mode
triton.profiler.hooks.instrumentation.triton_amd triton._C.libtriton.amd
triton.profiler.hooks.instrumentation.triton_ir triton._C.libtriton.ir
triton.profiler.hooks.instrumentation.triton_nvidia triton._C.libtriton.nvidia
triton.profiler.hooks.instrumentation.triton_passes triton._C.libtriton.passes
triton.profiler.hooks.instrumentation.triton_proton triton._C.libtriton.proton
triton.profiler.hooks.launch.libproton triton._C.libproton.proton
triton.profiler.language.tl triton.language.core
triton.profiler.language.triton_proton triton._C.libtriton.proton
triton.profiler.metric.libproton triton._C.libproton.proton
triton.profiler.metric.np numpy
triton.profiler.metric.tl triton.language
triton.profiler.mode.triton_proton triton._C.libtriton.proton
triton.profiler.proton.libproton triton._C.libproton.proton
triton.testing.runtime triton.runtime
triton.testing.tl triton.language
""".strip().splitlines()
    )
}
