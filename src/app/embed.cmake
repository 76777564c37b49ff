# Writes OUTPUT: a C++ file defining drover::app::SYMBOL (declared in HEADER) as the text of
# INPUT, NUL-terminated. The bytes go in as a char array, not a string literal: a literal
# longer than 65,536 characters is more than compilers must support (clang warns, and
# warnings are errors), and the API document is longer.
file(READ "${INPUT}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
string(REGEX REPLACE "(('[^']*',){16})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUTPUT}" "// Generated from ${INPUT} by src/app/embed.cmake.\n#include \"${HEADER}\"\n\nnamespace drover::app {\nnamespace {\nconst char kBytes[] = {\n${bytes}'\\0'};\n}  // namespace\nconst char* const ${SYMBOL} = kBytes;\n}  // namespace drover::app\n")
