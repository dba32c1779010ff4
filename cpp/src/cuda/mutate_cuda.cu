#include "fooling/mutation.h"
