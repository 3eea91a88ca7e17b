def add_train_arguments(parser): pass
def add_evaluate_arguments(parser): pass
