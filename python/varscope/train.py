"""Server-side optimizers with TensorFlow 1.x's names and defaults
(``vs.train.AdamOptimizer(0.001)``); pass one to ``vs.set_optimizer``."""

from varscope._native import OptimizerConfig as _Config


class Optimizer:
    def __init__(self, native, name):
        self._native = native
        self._name = name

    def get_name(self):
        return self._name

    def __repr__(self):
        return f"vs.train.{type(self).__name__}"


class GradientDescentOptimizer(Optimizer):
    def __init__(self, learning_rate, name="GradientDescent"):
        super().__init__(_Config.sgd(learning_rate), name)


class MomentumOptimizer(Optimizer):
    def __init__(self, learning_rate, momentum, use_nesterov=False, name="Momentum"):
        super().__init__(_Config.momentum(learning_rate, momentum, use_nesterov), name)


class AdagradOptimizer(Optimizer):
    def __init__(self, learning_rate, initial_accumulator_value=0.1, name="Adagrad"):
        super().__init__(_Config.adagrad(learning_rate, initial_accumulator_value), name)


class AdamOptimizer(Optimizer):
    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-08, name="Adam"):
        super().__init__(_Config.adam(learning_rate, beta1, beta2, epsilon), name)


class RMSPropOptimizer(Optimizer):
    def __init__(self, learning_rate, decay=0.9, momentum=0.0, epsilon=1e-10, centered=False,
                 name="RMSProp"):
        super().__init__(_Config.rmsprop(learning_rate, decay, momentum, epsilon, centered), name)


class FtrlOptimizer(Optimizer):
    def __init__(self, learning_rate, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                 l1_regularization_strength=0.0, l2_regularization_strength=0.0, name="Ftrl"):
        super().__init__(_Config.ftrl(learning_rate, learning_rate_power,
                                      initial_accumulator_value, l1_regularization_strength,
                                      l2_regularization_strength), name)
