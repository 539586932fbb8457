# Drives llama3-tokenize end to end: cmake -DTOOL=... -DDATA=... -DWORK=... -P test_tokenize_cli.cmake
file(MAKE_DIRECTORY ${WORK})
set(model ${DATA}/tokenizer.model)

# run(<name> <expected exit code 0|fail> <stdin text> args...): sets out_<name>, err_<name>
function(run name expect input)
  file(WRITE ${WORK}/${name}.in "${input}")
  execute_process(COMMAND ${TOOL} ${ARGN} INPUT_FILE ${WORK}/${name}.in
    OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(expect STREQUAL "0" AND NOT rc EQUAL 0)
    message(FATAL_ERROR "${name}: exit ${rc}\n${err}")
  elseif(expect STREQUAL "fail" AND rc EQUAL 0)
    message(FATAL_ERROR "${name}: expected a failure, got exit 0 and:\n${out}")
  endif()
  set(out_${name} "${out}" PARENT_SCOPE)
  set(err_${name} "${err}" PARENT_SCOPE)
endfunction()

function(expect_eq name actual expected)
  if(NOT "${actual}" STREQUAL "${expected}")
    message(FATAL_ERROR "${name}:\n  expected [${expected}]\n  found    [${actual}]")
  endif()
endfunction()

function(expect_contains name actual needle)
  string(FIND "${actual}" "${needle}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${name}: expected to find [${needle}] in:\n${actual}")
  endif()
endfunction()

run(help 0 "" --help)
expect_contains(help "${out_help}" "--jsonl")
expect_contains(help "${out_help}" "--allowed-special")

# Plain mode: all of stdin is one text (Meta's reference case).
run(encode 0 "This is a test sentence." --tokenizer ${model} --bos --eos)
expect_eq(encode "${out_encode}" "[128000,2028,374,264,1296,11914,13,128001]\n")
run(decode 0 "[128000,2028,374,264,1296,11914,13,128001]" --tokenizer ${model} --decode)
expect_eq(decode "${out_decode}" "<|begin_of_text|>This is a test sentence.<|end_of_text|>")

# Special tokens are text unless allowed.
run(special_plain 0 "a<|eot_id|>b" --tokenizer ${model})
expect_eq(special_plain "${out_special_plain}" "[64,27,91,68,354,851,91,29,65]\n")
run(special_all 0 "a<|eot_id|>b" --tokenizer ${model} --allowed-special all)
expect_eq(special_all "${out_special_all}" "[64,128009,65]\n")
run(special_list 0 "a<|eot_id|>b" --tokenizer ${model} --allowed-special "<|eot_id|>,<|begin_of_text|>")
expect_eq(special_list "${out_special_list}" "[64,128009,65]\n")
run(disallowed fail "a<|eot_id|>b" --tokenizer ${model} --disallowed-special all)
expect_contains(disallowed "${err_disallowed}" "<|eot_id|>")
run(unknown_special fail "" --tokenizer ${model} --allowed-special "<|nope|>")
expect_contains(unknown_special "${err_unknown_special}" "<|nope|>")

# JSON lines, in order, on two threads; blank lines skipped.
set(lines "{\"text\": \"Hello world\"}\n{\"text\": \"This is a test sentence.\"}\n\n{\"text\": \"\\u00e9t\\u00e9 \\ud83e\\udd99\"}\n")
run(jsonl 0 "${lines}" --tokenizer ${model} --jsonl --threads 2)
expect_eq(jsonl "${out_jsonl}"
  "{\"ids\":[9906,1917]}\n{\"ids\":[2028,374,264,1296,11914,13]}\n{\"ids\":[39883,11410,99,247]}\n")
run(jsonl_decode 0 "{\"ids\": [9906,1917]}\n{\"ids\": [39883,11410,99,247]}\n{\"ids\": [11410]}\n"
  --tokenizer ${model} --jsonl --decode)
expect_eq(jsonl_decode "${out_jsonl_decode}" "{\"text\":\"Hello world\"}\n{\"text\":\"été 🦙\"}\n{\"text\":\" �\"}\n")

# A bad line is reported by its number, after the lines before it.
run(bad_line fail "{\"text\": \"ok\"}\n{\"txt\": \"no\"}\n{\"text\": \"later\"}\n" --tokenizer ${model} --jsonl --threads 2)
expect_contains(bad_line "${err_bad_line}" "line 2")
expect_eq(bad_line "${out_bad_line}" "{\"ids\":[564]}\n")
run(bad_json fail "{\"text\": \"ok\"}\n{\"text\": \n" --tokenizer ${model} --jsonl)
expect_contains(bad_json "${err_bad_json}" "line 2: not JSON")
run(bad_id fail "{\"ids\": [1, 999999]}\n" --tokenizer ${model} --jsonl --decode)
expect_contains(bad_id "${err_bad_id}" "line 1: token id 999999")
run(bad_decode fail "[1, \"x\"]" --tokenizer ${model} --decode)
expect_contains(bad_decode "${err_bad_decode}" "integer")
string(ASCII 255 byte_ff)
run(bad_utf8 fail "ok${byte_ff}" --tokenizer ${model})
expect_contains(bad_utf8 "${err_bad_utf8}" "byte offset 2")

# Missing or broken tokenizer files say what is wrong.
run(no_tokenizer fail "" --bos)
expect_contains(no_tokenizer "${err_no_tokenizer}" "--tokenizer")
file(WRITE ${WORK}/broken.model "not base64!! 0\n")
run(broken fail "" --tokenizer ${WORK}/broken.model)
expect_contains(broken "${err_broken}" "broken.model")
expect_contains(broken "${err_broken}" "line 1")
