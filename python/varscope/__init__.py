"""varscope: TensorFlow 1.x's variable namespace on a parameter server.

    import varscope as vs
    vs.connect("127.0.0.1:50051")
    with vs.variable_scope("scope1"):
        var = vs.get_variable("variable1", [1])     # scope1/variable1:0
        var.assign([3.0]); print(var.pull())

A binding of the C++ client (one implementation of sessions, scope stacks,
recovery, TLS, tokens and cluster routing), with TensorFlow's names here.
"""

from varscope import errors, train
from varscope.client import Client, connect, get_default_client
from varscope.dtypes import (DType, as_dtype, bfloat16, bool, double, float16, float32,
                             float64, half, int8, int16, int32, int64, uint8)
from varscope.init_ops import (constant_initializer, fixed_size_partitioner,
                               glorot_normal_initializer, glorot_uniform_initializer,
                               he_normal_initializer, he_uniform_initializer,
                               identity_initializer, lecun_normal_initializer,
                               lecun_uniform_initializer, min_max_variable_partitioner,
                               ones_initializer, orthogonal_initializer,
                               random_normal_initializer, random_uniform_initializer,
                               truncated_normal_initializer, uniform_unit_scaling_initializer,
                               variable_axis_size_partitioner, variance_scaling_initializer,
                               zeros_initializer)
from varscope.scopes import (AUTO_REUSE, GraphKeys, VariableScope, get_collection,
                             get_local_variable, get_variable, get_variable_scope,
                             global_variables, local_variables, name_scope, op_name,
                             trainable_variables, variable_scope)
from varscope.variables import Variable, Watch, push_many, set_optimizer, watch

__all__ = [name for name in dir() if not name.startswith("_")]
