# Writes OUTPUT: a C++ file defining drover::app::SYMBOL (declared in HEADER) as the text of
# INPUT.
file(READ "${INPUT}" text)
string(FIND "${text}" ")drover\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )drover\"")
endif()
file(WRITE "${OUTPUT}" "// Generated from ${INPUT} by src/app/embed.cmake.\n#include \"${HEADER}\"\n\nnamespace drover::app {\nconst char* const ${SYMBOL} = R\"drover(${text})drover\";\n}  // namespace drover::app\n")
